// The seeds' design (shared/seeds 001): Express keeps an array of open responses;
// POST /broadcast writes the message to each of them. Extended, as the tutorials' per-user
// channels are, with an optional topic: GET /events/:topic and {"topic": ...} in the body
// (a linear filter over the client list). No history, no Last-Event-ID handling.
// Usage: node express-broadcast.js PORT
"use strict";
const express = require("express");

const port = Number(process.argv[2] || 3000);
const app = express();
app.use(express.json());

const clients = [];
let eventId = 0;

function subscribe(req, res) {
  res.setHeader("Content-Type", "text/event-stream");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("Connection", "keep-alive");
  const client = { res, topic: req.params.topic || null };
  clients.push(client);
  res.write("data: Connected to server\n\n");
  req.on("close", () => {
    const index = clients.indexOf(client);
    if (index > -1) clients.splice(index, 1);
  });
}

app.get("/events", subscribe);
app.get("/events/:topic", subscribe);

app.post("/broadcast", (req, res) => {
  const message = req.body.message;
  const topic = req.body.topic || null;
  const frame = `id: ${++eventId}\nevent: message\ndata: ${message}\n\n`;
  let sent = 0;
  clients.forEach((client) => {
    if (topic === null || client.topic === topic) {
      client.res.write(frame);
      sent++;
    }
  });
  res.json({ sent });
});

app.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${port}`);
});
