// better-sse peer: one createChannel() per topic, library defaults (keep-alive every 10 s,
// JSON serializer). GET /events/:topic subscribes; POST /publish {"topic","data"} broadcasts.
// better-sse keeps no history, so Last-Event-ID is accepted but nothing is replayed.
// Usage: node better-sse.js PORT
"use strict";
const express = require("express");
const { createSession, createChannel } = require("better-sse");

const port = Number(process.argv[2] || 3001);
const app = express();
app.use(express.json());

const channels = new Map();
function channel(topic) {
  let c = channels.get(topic);
  if (!c) {
    c = createChannel();
    channels.set(topic, c);
  }
  return c;
}

app.get("/events/:topic", async (req, res) => {
  const session = await createSession(req, res);
  channel(req.params.topic).register(session);
});

app.post("/publish", (req, res) => {
  const c = channel(req.body.topic);
  c.broadcast(req.body.data, "message");
  res.json({ sent: c.sessionCount });
});

app.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${port}`);
});
