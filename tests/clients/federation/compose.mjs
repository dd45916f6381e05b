// Test-only: parse our exported SDL with graphql-js, then compose it with a second subgraph using Apollo's
// composition library. Prints JSON: {buildSchemaError, errors, hints, supergraphSdl}.
import { readFileSync } from "node:fs";
import { buildSchema, parse } from "graphql";
import { composeServices } from "@apollo/composition";

const [oursPath, otherPath] = process.argv.slice(2);
const ours = readFileSync(oursPath, "utf8");
const other = readFileSync(otherPath, "utf8");

let buildSchemaError = null;
try {
  buildSchema(ours);
} catch (error) {
  buildSchemaError = String(error);
}

const result = composeServices([
  { name: "cityos", url: "http://127.0.0.1:8000/graphql", typeDefs: parse(ours) },
  { name: "reviews", url: "http://127.0.0.1:8001/graphql", typeDefs: parse(other) },
]);
process.stdout.write(JSON.stringify({
  buildSchemaError,
  errors: (result.errors ?? []).map((error) => String(error.message)),
  hints: (result.hints ?? []).map((hint) => `${hint.definition.code}: ${hint.message}`),
  supergraphSdl: result.supergraphSdl ?? null,
}));
