"""The /graphql endpoint: GET serves GraphiQL, POST executes, WebSocket speaks graphql-transport-ws only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from cityos.context import RequestContext
from cityos.errors import ApiError
from cityos.schema.api import CityosSchema
from cityos.services import Services

MAX_SUBSCRIPTIONS_PER_CONNECTION = 20


class GraphQLEndpoint(GraphQL[RequestContext, None]):
    def __init__(self, schema: CityosSchema) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            keep_alive=True,
            keep_alive_interval=15,
        )

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> RequestContext:
        services: Services = request.app.state.services
        headers = {key.lower(): value for key, value in request.headers.items()}
        return RequestContext(services=services, headers=headers, request=request, response=response)

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: the token comes in connection_init; a missing or bad one closes with 4403."""
        try:
            await context.identify_connection()
        except ApiError as error:
            raise ConnectionRejectionError({"message": error.message, "code": error.code.value}) from None
        return UNSET  # type: ignore[no-any-return]

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        """A POST body must be a JSON object (a list is a batch, which strawberry refuses itself): `null`, `42`,
        `true` or `"x"` are 400, not an exception in the view."""
        decoded = super().parse_json(data)
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "the request body must be a JSON object with a `query`")
        return decoded
