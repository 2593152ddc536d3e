// A Ricochet client not written in Python: what a Node service does, knowing only the
// README and the shipped JSON Schemas (contracts/schemas).
//
// 1. Validates every trigger against trigger.v1.json, then publishes it to
//    <ns>.triggers (routing key = target, JSON, persistent, confirmed) with reply_to
//    and correlation_id.
// 2. Receives one reply.v1 per execution on its own queue (de-duplicated by execution id,
//    as the README says a receiver must), validated against reply.v1.json.
// 3. Follows the event log: the stream <ns>.events from x-stream-offset "first", with a
//    prefetch and a manual ack of every delivery; each message is a JSON array of events,
//    validated against events/batch.json and each event against its own type's schema.
//
// Every schema is compiled by ajv in strict mode (JSON Schema 2020-12, ajv-formats for
// "date-time"). Prints one JSON summary line; exits 1 on any invalid message.
//
// Usage: node interop.mjs --url amqp://... --namespace ns --schemas DIR
//        --target t.ok [--count N] [--failing t.always_fails] [--prefix key-] [--no-args]

import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import amqp from "amqplib";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string", default: "amqp://guest:guest@127.0.0.1:5672/" },
    namespace: { type: "string", default: "ricochet" },
    schemas: { type: "string" },
    target: { type: "string", default: "t.ok" },
    failing: { type: "string" },
    count: { type: "string", default: "3" },
    "no-args": { type: "boolean", default: false },
    latencies: { type: "boolean", default: false },
    prefix: { type: "string", default: `node-${Date.now()}-` },
    "timeout-s": { type: "string", default: "120" },
  },
});
const count = Number(opts.count);
const deadline = Date.now() + Number(opts["timeout-s"]) * 1000;

// --- schemas: every file, compiled strictly -------------------------------------------
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const schemaFiles = [
  ...readdirSync(opts.schemas).filter((f) => f.endsWith(".json")),
  ...readdirSync(join(opts.schemas, "events")).map((f) => join("events", f)),
];
for (const file of schemaFiles) {
  ajv.addSchema(JSON.parse(readFileSync(join(opts.schemas, file), "utf8")));
}
const validator = (id) => {
  const v = ajv.getSchema(`ricochet:${id}`);
  if (!v) throw new Error(`no schema ricochet:${id}`);
  return v;
};
const validTrigger = validator("trigger.v1");
const validReply = validator("reply.v1");
const validBatch = validator("events/batch");
const problems = [];
const check = (valid, value, what) => {
  if (!valid(value)) problems.push({ what, errors: ajv.errorsText(valid.errors), value });
};

// --- triggers with reply_to -----------------------------------------------------------
const connection = await amqp.connect(opts.url);
const publisher = await connection.createConfirmChannel();
const listener = await connection.createChannel();
await listener.prefetch(500);
const { queue: replyTo } = await listener.assertQueue("", { exclusive: true });

const triggers = [];
for (let i = 0; i < count; i++) {
  const failing = opts.failing && i === count - 1;
  const target = failing ? opts.failing : opts.target;
  const args = opts["no-args"] ? {} : { args: [i] };
  triggers.push({ target, ...args, idempotency_key: `${opts.prefix}${i}` });
}
const replies = new Map(); // execution id -> { reply, correlationId, latencyMs }
let duplicates = 0;
let allReplied;
const replied = new Promise((resolve) => (allReplied = resolve));
await listener.consume(replyTo, (message) => {
  const receivedAt = Date.now();
  listener.ack(message);
  const reply = JSON.parse(message.content.toString("utf8"));
  check(validReply, reply, "reply");
  if (replies.has(reply.execution_id)) {
    duplicates++; // a reply published again after a lost confirm: dropped here
    return;
  }
  const latencyMs = reply.ended_at ? receivedAt - Date.parse(reply.ended_at) : null;
  replies.set(reply.execution_id, {
    reply,
    correlationId: message.properties.correlationId,
    latencyMs,
  });
  if (replies.size >= triggers.length) allReplied();
});

const publishedAt = Date.now();
for (const [i, trigger] of triggers.entries()) {
  check(validTrigger, trigger, "trigger");
  publisher.publish(`${opts.namespace}.triggers`, trigger.target, Buffer.from(JSON.stringify(trigger)), {
    contentType: "application/json",
    persistent: true,
    replyTo,
    correlationId: `c-${i}`,
  });
}
await publisher.waitForConfirms();
await Promise.race([replied, timeout("replies")]);

// --- the event log: a stream, read from the first offset -------------------------------
const reader = await connection.createChannel();
await reader.prefetch(100);
const wanted = new Set(replies.keys());
const ended = new Set();
const typesSeen = new Set();
let events = 0;
let lastOffset = -1;
let allRead;
const read = new Promise((resolve) => (allRead = resolve));
await reader.consume(
  `${opts.namespace}.events`,
  (message) => {
    try {
      lastOffset = Number(message.properties.headers["x-stream-offset"]);
      const batch = JSON.parse(message.content.toString("utf8"));
      check(validBatch, batch, `stream message at offset ${lastOffset}`);
      for (const event of batch) {
        events++;
        typesSeen.add(event.type);
        check(validator(`events/${event.type}`), event, event.type);
        if (wanted.has(event.execution_id) && event.type === "reply_sent.v1") {
          ended.add(event.execution_id);
        }
      }
    } finally {
      reader.ack(message); // on a stream an ack only grants credit; never nack (error 540)
    }
    if ([...wanted].every((id) => ended.has(id))) allRead();
  },
  { noAck: false, arguments: { "x-stream-offset": "first" } },
);
await Promise.race([read, timeout("the log")]);
await connection.close();

// --- summary --------------------------------------------------------------------------
const latencies = [...replies.values()].map((r) => r.latencyMs).filter((v) => v !== null);
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : null);
const statuses = {};
for (const { reply } of replies.values()) statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
// The execution id of a key, computed here as the README says: uuid5(namespace, key) in hex.
const correlated = triggers.every((trigger, i) => {
  return replies.get(executionIdFor(trigger.idempotency_key))?.correlationId === `c-${i}`;
});
const summary = {
  schemas: schemaFiles.length,
  triggers: triggers.length,
  replies: replies.size,
  duplicate_replies: duplicates,
  statuses,
  correlated,
  events,
  last_offset: lastOffset,
  types_seen: [...typesSeen].sort(),
  latency_ms: { p50: pct(50), p99: pct(99), max: latencies.at(-1) ?? null },
  seconds: (Date.now() - publishedAt) / 1000,
  problems: problems.slice(0, 10),
  problem_count: problems.length,
};
if (opts.latencies) summary.latencies_ms = latencies;
console.log(JSON.stringify(summary));
process.exit(problems.length ? 1 : 0);

function executionIdFor(key) {
  const namespace = Buffer.from("7c1b3c5e2f444a8f9a534f0b1d1e6a20", "hex");
  const hash = createHash("sha1").update(namespace).update(key, "utf8").digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  return hash.subarray(0, 16).toString("hex");
}

function timeout(what) {
  return new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${replies.size}/${triggers.length} replies`)), Math.max(0, deadline - Date.now())).unref(),
  );
}
