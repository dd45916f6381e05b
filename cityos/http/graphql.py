"""The /graphql endpoint: GET serves GraphiQL, POST executes, WebSocket speaks graphql-transport-ws only.

HTTP responses are orjson bytes, written as they are. WebSocket messages go out as text frames: the protocol's
messages are JSON text, and clients such as npm `graphql-ws` reject binary frames (close 4004).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from cityos.errors import ApiError
from cityos.graphql.core.compiler.route import answer_warm
from cityos.graphql.core.context import RequestContext
from cityos.graphql.schema import CityosSchema
from cityos.http.frames import FRAMES_EXTENSION, FrameSink
from cityos.http.graphiql import GraphiQL
from cityos.http.live import LiveHub, SharedStreamHandler
from cityos.services import Services

MAX_SUBSCRIPTIONS_PER_CONNECTION = 20
WARM_KEYS = frozenset({"query", "operationName", "variables"})  # a body with extensions takes the full path
HANDED_ON = "cityos.context"  # the scope key of a context the warm path handed on


class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    """Every graphql-transport-ws message as a text frame (Strawberry sends bytes as binary frames)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        await self.send_text_frame(encoded.decode() if isinstance(encoded, bytes) else encoded)

    @property
    def frame_sink(self) -> FrameSink | None:
        """The connection's frame writer, when the server offers it (cityos.http.frames.FrameProtocol)."""
        sink = self.ws.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        return sink if isinstance(sink, FrameSink) else None

    async def send_text_frame(self, text: str) -> None:
        """A message encoded already (shared subscription results: cityos.http.live)."""
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GraphQLEndpoint(GraphQL[RequestContext, None]):
    websocket_adapter_class = TextFrameWebSocketAdapter
    graphql_transport_ws_handler_class = SharedStreamHandler

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
        self.graphiql = GraphiQL()
        self._live_hub: LiveHub | None = None

    def live_hub(self, max_queue: int) -> LiveHub:
        """The shared subscription groups of this endpoint (one per process)."""
        if self._live_hub is None:
            self._live_hub = LiveHub(max_queue)
        return self._live_hub

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our own GraphiQL page and assets (cityos/http/graphiql.py) instead of Strawberry's CDN page; off in
        production unless CITYOS_GRAPHIQL says otherwise."""
        if not request.app.state.services.settings.graphiql_enabled:
            return PlainTextResponse("GraphiQL is disabled on this server (CITYOS_GRAPHIQL)", status_code=404)
        return await self.graphiql.page(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST the compiled read path answered before in the same shape is answered from its caches
        (`answer_warm`); every other request, and one it hands back, goes through strawberry."""
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["app"].state.services.settings.\
                CITYOS_COMPILED_READS:
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        answer = await self._answer_warm(request, body)
        if answer is not None:
            await Response(answer, media_type="application/json")(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:  # the body once more, for strawberry's own reading of it
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await super().__call__(scope, replay, send)

    async def _answer_warm(self, request: Request, body: bytes) -> bytes | None:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(decoded, dict) or not decoded.keys() <= WARM_KEYS:
            return None
        query, operation_name, variables = decoded.get("query"), decoded.get("operationName"), \
            decoded.get("variables")
        if not isinstance(query, str) or not isinstance(operation_name, str | None) or \
                not isinstance(variables, dict | None):
            return None
        context = await self.get_context(request, None)
        try:
            answer = await answer_warm(context, query, operation_name, variables)
        except Exception:  # the full path answers it, with what the context learnt (identity, spending)
            answer = None
        if answer is None:
            if context.db.started:
                await context.db.finish(commit=False)
                context.fresh_db()
            request.scope[HANDED_ON] = context
        return answer

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None
                          ) -> RequestContext:
        handed_on = request.scope.pop(HANDED_ON, None)
        if isinstance(handed_on, RequestContext):
            handed_on.request, handed_on.response = request, response
            return handed_on
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
