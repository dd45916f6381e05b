// Starts GraphiQL from the pinned UMD bundles (globals React, ReactDOM, GraphiQL, graphqlWs). No inline script:
// the settings come from the page's JSON data block #cityos-graphiql-config (endpoint, default query, headers).
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('cityos-graphiql-config').textContent);
  var httpUrl = new URL(config.endpoint, window.location.href);
  var wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  wsUrl.hash = '';

  var httpFetcher = GraphiQL.createFetcher({ url: httpUrl.href });

  // Parsed here: GraphiQL's own documentAST can lag behind the editor by a debounce.
  function isSubscription(params) {
    var document;
    try { document = GraphiQL.GraphQL.parse(params.query); } catch (error) { return false; }
    var operations = document.definitions.filter(function (d) { return d.kind === 'OperationDefinition'; });
    var operation = params.operationName
      ? operations.find(function (d) { return d.name && d.name.value === params.operationName; })
      : operations[0];
    return Boolean(operation && operation.operation === 'subscription');
  }

  // One graphql-ws client per set of headers: the server reads Authorization and x-publishable-api-key from
  // connection_init, so new headers need a new connection.
  var socket = null;
  function wsClient(headers) {
    var key = JSON.stringify(headers || {});
    if (socket && socket.key === key) return socket.client;
    if (socket) socket.client.dispose();
    socket = {
      key: key,
      client: graphqlWs.createClient({ url: wsUrl.href, connectionParams: headers || {}, retryAttempts: 0 }),
    };
    return socket.client;
  }

  async function* subscribe(client, params) {
    try {
      for await (var result of client.iterate(params)) yield result;
    } catch (error) {
      if (error && typeof error.code === 'number') {  // a CloseEvent: say why the server closed
        throw new Error('WebSocket closed with ' + error.code + (error.reason ? ': ' + error.reason : ''));
      }
      throw error;
    }
  }

  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    if (isSubscription(params)) return subscribe(wsClient(headers), params);
    return httpFetcher(params, options);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: config.query,
    defaultHeaders: config.headers,
    defaultEditorToolsVisibility: config.headers ? 'headers' : true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    inputValueDeprecation: true,
  }));
})();
