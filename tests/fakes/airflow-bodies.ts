/**
 * The request bodies the fake Airflow accepts, per version, and the errors it answers for
 * the rest, in each version's shape. Written from Airflow's published documents:
 *
 * - Airflow 2.10 (`/api/v1`): the stable REST API's OpenAPI document (v1.yaml: `DAGRun`,
 *   `DAG`, `ClearTaskInstances`), checked by Connexion before the handler (types, read-only
 *   properties: 400 `Property is read-only - 'x'`, `'v' is not of type 'boolean'`), then
 *   the marshmallow schemas of `airflow/api_connexion/schemas/` (`DAGRunSchema`,
 *   `DAGSchema`, `ClearTaskInstanceFormSchema`), which refuse unknown and dump-only fields
 *   with 400 `{'x': ['Unknown field.']}`. Errors are problem details
 *   `{type, title, status, detail}`.
 * - Airflow 3.0/3.1 (`/api/v2`): the FastAPI OpenAPI document and its pydantic bodies
 *   (`TriggerDAGRunPostBody`, `DAGPatchBody`, `ClearTaskInstancesBody`: strict models, so
 *   extra fields are refused; lax booleans), answering 422
 *   `{detail: [{type, loc, msg, input}]}`.
 */
export type Version = "v1" | "v2";

type Kind = "string" | "boolean" | "object" | "datetime" | "task-ids";
interface Field {
  kind: Kind;
  nullable?: boolean;
  /** Airflow 2: a property the document marks read-only. */
  readOnly?: boolean;
  /** Airflow 3: a field with no default. */
  required?: boolean;
}
export type BodySpec = Record<string, Field>;

/** A refusal in the version's shape: status and the JSON body Airflow answers. */
export interface Refusal {
  status: number;
  body: unknown;
}

export const problem = (status: number, title: string, detail: unknown): Refusal => ({ status, body: { detail, status, title, type: "about:blank" } });

const V1_RUN: BodySpec = {
  dag_run_id: { kind: "string", nullable: true },
  logical_date: { kind: "datetime", nullable: true },
  execution_date: { kind: "datetime", nullable: true },
  data_interval_start: { kind: "datetime", nullable: true },
  data_interval_end: { kind: "datetime", nullable: true },
  conf: { kind: "object" },
  note: { kind: "string", nullable: true },
  dag_id: { kind: "string", readOnly: true },
  start_date: { kind: "datetime", readOnly: true, nullable: true },
  end_date: { kind: "datetime", readOnly: true, nullable: true },
  last_scheduling_decision: { kind: "datetime", readOnly: true, nullable: true },
  run_type: { kind: "string", readOnly: true },
  state: { kind: "string", readOnly: true },
  external_trigger: { kind: "boolean", readOnly: true },
};
const V2_RUN: BodySpec = {
  dag_run_id: { kind: "string", nullable: true },
  data_interval_start: { kind: "datetime", nullable: true },
  data_interval_end: { kind: "datetime", nullable: true },
  logical_date: { kind: "datetime", nullable: true, required: true },
  run_after: { kind: "datetime", nullable: true },
  conf: { kind: "object" },
  note: { kind: "string", nullable: true },
};
const CLEAR_COMMON: BodySpec = {
  dry_run: { kind: "boolean" },
  start_date: { kind: "datetime", nullable: true },
  end_date: { kind: "datetime", nullable: true },
  only_failed: { kind: "boolean" },
  only_running: { kind: "boolean" },
  reset_dag_runs: { kind: "boolean" },
  task_ids: { kind: "task-ids", nullable: true },
  dag_run_id: { kind: "string", nullable: true },
  include_upstream: { kind: "boolean" },
  include_downstream: { kind: "boolean" },
  include_future: { kind: "boolean" },
  include_past: { kind: "boolean" },
};
const V1_DAG_PATCH: BodySpec = {
  is_paused: { kind: "boolean", nullable: true },
  dag_id: { kind: "string", readOnly: true },
  is_active: { kind: "boolean", readOnly: true },
  fileloc: { kind: "string", readOnly: true },
};

export const BODIES = {
  v1: { trigger: V1_RUN, clear: CLEAR_COMMON, patchDag: V1_DAG_PATCH },
  v2: {
    trigger: V2_RUN,
    clear: { ...CLEAR_COMMON, run_on_latest_version: { kind: "boolean" } } as BodySpec,
    patchDag: { is_paused: { kind: "boolean", required: true } } as BodySpec,
    token: { username: { kind: "string", required: true }, password: { kind: "string", required: true } } as BodySpec,
  },
} satisfies Record<Version, Record<string, BodySpec>>;

/** Defaults Airflow fills in for a clear request: `reset_dag_runs` differs between the versions. */
export const CLEAR_DEFAULTS: Record<Version, Record<string, unknown>> = {
  v1: {
    dry_run: true,
    only_failed: true,
    only_running: false,
    reset_dag_runs: false,
    include_upstream: false,
    include_downstream: false,
    include_future: false,
    include_past: false,
    task_ids: null,
    dag_run_id: null,
  },
  v2: {
    dry_run: true,
    only_failed: true,
    only_running: false,
    reset_dag_runs: true,
    include_upstream: false,
    include_downstream: false,
    include_future: false,
    include_past: false,
    task_ids: null,
    dag_run_id: null,
    run_on_latest_version: false,
  },
};

const LAX_TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const LAX_FALSE = new Set(["0", "off", "f", "false", "n", "no"]);
const isDate = (v: unknown) => typeof v === "string" && !Number.isNaN(Date.parse(v));
const isAware = (v: string) => /(Z|[+-]\d\d:?\d\d)$/i.test(v);

/** Checks one value the way the version's validator does; returns the parsed value or a message. */
function check(version: Version, field: Field, value: unknown): { ok: true; value: unknown } | { ok: false; type: string; msg: string } {
  if (value === null)
    return field.nullable
      ? { ok: true, value }
      : version === "v1"
        ? { ok: false, type: "null", msg: "None is not of type" }
        : { ok: false, type: `${field.kind}_type`, msg: `Input should be a valid ${field.kind}` };
  switch (field.kind) {
    case "string":
      return typeof value === "string" ? { ok: true, value } : { ok: false, type: "string_type", msg: "Input should be a valid string" };
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      // Pydantic's lax mode reads 0/1 and yes/no-like strings as booleans; JSON Schema does not.
      if (version === "v2" && (value === 0 || value === 1)) return { ok: true, value: value === 1 };
      if (version === "v2" && typeof value === "string" && (LAX_TRUE.has(value.toLowerCase()) || LAX_FALSE.has(value.toLowerCase())))
        return { ok: true, value: LAX_TRUE.has(value.toLowerCase()) };
      return { ok: false, type: "bool_parsing", msg: "Input should be a valid boolean, unable to interpret input" };
    case "object":
      return typeof value === "object" && !Array.isArray(value)
        ? { ok: true, value }
        : { ok: false, type: "dict_type", msg: "Input should be a valid dictionary" };
    case "datetime":
      if (!isDate(value)) return { ok: false, type: "datetime_from_date_parsing", msg: "Input should be a valid datetime" };
      return version === "v2" && !isAware(value as string)
        ? { ok: false, type: "timezone_aware", msg: "Input should have timezone info" }
        : { ok: true, value };
    case "task-ids": {
      const valid =
        Array.isArray(value) &&
        value.every((t) => typeof t === "string" || (Array.isArray(t) && t.length === 2 && typeof t[0] === "string" && Number.isInteger(t[1])));
      return valid ? { ok: true, value } : { ok: false, type: "list_type", msg: "Input should be a valid list of task ids" };
    }
  }
}

const jsonSchemaType: Record<Kind, string> = { string: "string", boolean: "boolean", object: "object", datetime: "string", "task-ids": "array" };
const pyRepr = (v: unknown) => (typeof v === "string" ? `'${v}'` : v === null ? "None" : JSON.stringify(v));

/**
 * Validates a JSON body against a version's spec: Airflow 2 answers the first problem
 * Connexion finds (type, read-only), then marshmallow's unknown fields; Airflow 3 answers
 * every problem pydantic finds at once.
 */
export function validateBody(
  version: Version,
  spec: BodySpec,
  body: Record<string, unknown>,
): { ok: true; value: Record<string, unknown> } | { ok: false; refusal: Refusal } {
  const value: Record<string, unknown> = {};
  if (version === "v1") {
    for (const [name, v] of Object.entries(body)) {
      const field = spec[name];
      if (!field) continue;
      const checked = check(version, field, v);
      if (!checked.ok) return { ok: false, refusal: problem(400, "Bad Request", `${pyRepr(v)} is not of type '${jsonSchemaType[field.kind]}' - '${name}'`) };
      if (field.readOnly) return { ok: false, refusal: problem(400, "Bad Request", `Property is read-only - '${name}'`) };
      value[name] = checked.value;
    }
    const unknown = Object.keys(body).filter((name) => !spec[name]);
    if (unknown.length) return { ok: false, refusal: problem(400, "Bad Request", `{${unknown.map((n) => `'${n}': ['Unknown field.']`).join(", ")}}`) };
    return { ok: true, value };
  }
  const issues: unknown[] = [];
  for (const [name, field] of Object.entries(spec)) {
    if (!(name in body)) {
      if (field.required) issues.push({ type: "missing", loc: ["body", name], msg: "Field required", input: body });
      continue;
    }
    const checked = check(version, field, body[name]);
    if (checked.ok) value[name] = checked.value;
    else issues.push({ type: checked.type, loc: ["body", name], msg: checked.msg, input: body[name] });
  }
  for (const name of Object.keys(body))
    if (!spec[name]) issues.push({ type: "extra_forbidden", loc: ["body", name], msg: "Extra inputs are not permitted", input: body[name] });
  return issues.length ? { ok: false, refusal: { status: 422, body: { detail: issues } } } : { ok: true, value };
}

/**
 * Reads a request's body as Airflow would: Airflow 2 (Connexion) refuses a body without a
 * JSON content type with 415 and unparsable JSON with 400; Airflow 3 (FastAPI) does not
 * parse a body without a JSON content type, so the model sees a non-object and answers 422.
 */
export function readJson(
  version: Version,
  contentType: string | undefined,
  raw: string,
): { ok: true; body: Record<string, unknown> } | { ok: false; refusal: Refusal } {
  const isJson = /^application\/(.+\+)?json\b/i.test(contentType ?? "");
  if (!isJson) {
    if (version === "v1")
      return { ok: false, refusal: problem(415, "Unsupported Media Type", `Invalid Content-type (${contentType ?? "none"}), expected JSON data`) };
    return {
      ok: false,
      refusal: {
        status: 422,
        body: {
          detail: [{ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object to extract fields from", input: raw }],
        },
      },
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    if (version === "v1") return { ok: false, refusal: problem(400, "Bad Request", "Request body is not valid JSON") };
    return { ok: false, refusal: { status: 422, body: { detail: [{ type: "json_invalid", loc: ["body", 0], msg: "JSON decode error", input: {} }] } } };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    if (version === "v1") return { ok: false, refusal: problem(400, "Bad Request", `${pyRepr(parsed)} is not of type 'object'`) };
    return {
      ok: false,
      refusal: {
        status: 422,
        body: {
          detail: [{ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object to extract fields from", input: parsed }],
        },
      },
    };
  }
  return { ok: true, body: parsed as Record<string, unknown> };
}
