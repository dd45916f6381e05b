"""The Cerbos policy decision point, reached over gRPC."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from cerbos.sdk.grpc.client import AsyncCerbosClient

DEFAULT_GRPC_PORT = 3593


@dataclass(frozen=True)
class PdpAddress:
    target: str  # host:port
    tls: bool


def pdp_address(url: str) -> PdpAddress:
    """CERBOS_URL → gRPC target. grpc://host:port and http:// are plaintext; grpcs:// and https:// use TLS."""
    parts = urlsplit(url if "://" in url else f"grpc://{url}")
    tls = parts.scheme in {"grpcs", "https"}
    port = parts.port or (443 if tls else DEFAULT_GRPC_PORT)
    return PdpAddress(f"{parts.hostname}:{port}", tls)


def create_pdp_client(url: str, timeout_seconds: float = 2.0) -> AsyncCerbosClient:
    address = pdp_address(url)
    return AsyncCerbosClient(address.target, tls_verify=address.tls, timeout_secs=timeout_seconds)
