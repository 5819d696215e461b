#!/usr/bin/env node
// A client of `poold serve`, Node built-ins only: poold as a co-process that
// runs tasks on isolated workers.
//
//   const pool = new PooldServer(["poold", "serve", "-n", "4"]);
//   const r = await pool.run("t1", "pow", {base: 2, exp: 10});
//   console.log(r.ok, r.result, r.pid);
//   await pool.close();
//
// Results are objects in poold's --json format: id, ok, result or error
// ({kind, message, ...}), host, pid, attempts, ... A task that crashes its
// worker is one result with kind "worker_lost"; the server goes on.
"use strict";

const { spawn } = require("node:child_process");
const readline = require("node:readline");

class PooldServer {
  constructor(argv, options = {}) {
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", options.stderr || "inherit"] });
    this.waiting = new Map(); // task id -> resolve
    this.controls = []; // resolves of control lines, in order
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: this.proc.stdout }).on("line", (line) => this.onLine(JSON.parse(line)));
  }

  onLine(msg) {
    if ("control" in msg) {
      this.controls.shift()(msg);
      return;
    }
    const resolve = this.waiting.get(msg.id);
    if (resolve) {
      this.waiting.delete(msg.id);
      resolve(msg);
    }
  }

  send(obj) {
    this.proc.stdin.write(JSON.stringify(obj) + "\n");
  }

  // run submits one task and resolves with its result. Ids must be unique
  // among the tasks in flight.
  run(id, func, args, options = {}) {
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ id, func, ...(args === undefined ? {} : { args }), ...options });
    });
  }

  // sendRaw sends one line as it is, and resolves with the result of
  // the id that line will have.
  sendRaw(line, id) {
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin.write(line + "\n");
    });
  }

  control(obj) {
    return new Promise((resolve) => {
      this.controls.push(resolve);
      this.send(obj);
    });
  }

  async cancel(id) {
    return (await this.control({ control: "cancel", id })).cancelled;
  }

  async stats() {
    return (await this.control({ control: "stats" })).stats;
  }

  // close ends the input: the server finishes what runs and exits.
  async close() {
    this.proc.stdin.end();
    return this.exited;
  }
}

module.exports = { PooldServer };

// Demo: node poold_client.js POOLD [FLAGS...]
if (require.main === module) {
  (async () => {
    const pool = new PooldServer([process.argv[2], "serve", ...process.argv.slice(3)]);
    const results = await Promise.all([
      pool.run("pow", "pow", { base: 2, exp: 64 }),
      pool.run("crash", "crash", { mode: "segfault" }),
      pool.run("echo", "echo", { value: { a: [1, 2.5, "x"] } }),
    ]);
    for (const r of results) {
      console.log(r.id, r.ok ? "ok" : "failed", JSON.stringify(r.ok ? r.result : r.error.kind), "pid", r.pid);
    }
    const { code } = await pool.close();
    process.exit(code);
  })();
}
