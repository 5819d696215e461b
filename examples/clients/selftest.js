#!/usr/bin/env node
// Runs poold serve through poold_client.js: selftest.js POOLD N. N tasks,
// 1 % bad lines and 1 % tasks that kill their worker; every id must come
// back once with the kind it should have; cancel and stats must answer.
"use strict";

const path = require("node:path");
const { PooldServer } = require(path.join(__dirname, "poold_client.js"));

async function main(poold, n) {
  const pool = new PooldServer([poold, "serve", "-n", "2"], { stderr: "ignore" });
  const want = new Map();
  const pending = [];
  for (let i = 0; i < n; i++) {
    const id = `t${i}`;
    if (i % 100 === 37) {
      want.set(id, "bad_task");
      pending.push(pool.sendRaw(`{"id": "${id}", "func": "no_such_task"}`, id));
    } else if (i % 100 === 71) {
      want.set(id, "worker_lost");
      pending.push(pool.run(id, "crash", { mode: "kill" }));
    } else {
      want.set(id, "ok");
      pending.push(pool.run(id, "echo", { value: i }));
    }
  }
  want.set("long", "canceled");
  pending.push(pool.run("long", "sleep", { seconds: 30 }));
  const stats = await pool.stats();
  if (stats.received !== n + 1) return fail(`stats: ${JSON.stringify(stats)}, want ${n + 1} received`);
  if (!(await pool.cancel("long"))) return fail("cancel of the long task found nothing in flight");
  const kinds = {};
  for (const r of await Promise.all(pending)) {
    const kind = r.ok ? "ok" : r.error.kind;
    kinds[kind] = (kinds[kind] || 0) + 1;
    if (want.get(r.id) !== kind) return fail(`${r.id}: ${kind}, want ${want.get(r.id)}: ${JSON.stringify(r)}`);
  }
  const { code } = await pool.close();
  if (code !== 0) return fail(`poold serve exited ${code} at the end of its input, want 0`);
  console.log(`ok: ${pending.length} results, ${JSON.stringify(kinds)}`);
  return 0;
}

function fail(msg) {
  console.log("FAIL: " + msg);
  return 1;
}

main(process.argv[2], Number(process.argv[3])).then((code) => process.exit(code));
