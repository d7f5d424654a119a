// The fan-out benchmark's peer: `jobUpdates` served with the reference JavaScript stack a team
// would otherwise pick (graphql-js 16 executing each subscriber's document, graphql-ws 6 on ws,
// graphql-subscriptions' PubSub). POST /publish with an event's JSON publishes it to every
// subscriber; the schema is the part of jobgate's contract the benchmark's document selects.
//
//     node server.mjs PORT
import { EventEmitter } from "node:events";
import { createServer } from "node:http";
import { buildSchema } from "graphql";
import { PubSub } from "graphql-subscriptions";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";

const schema = buildSchema(`
  scalar DateTime
  enum JobState { IN_QUEUE RUNNING CANCELING SUCCESS FAILURE EXPIRED SUSPENDED }
  type JobUpdate { cursor: String! timestamp: DateTime! state: JobState status: String }
  type JobUpdateEvent { cursor: String! jobId: ID! update: JobUpdate! stateAfter: JobState! }
  type Query { ready: Boolean }
  type Subscription { jobUpdates: JobUpdateEvent! }
`);
// Every subscriber listens on the emitter: no cap (Node warns past 10 by default).
const eventEmitter = new EventEmitter().setMaxListeners(0);
const pubsub = new PubSub({ eventEmitter });
// What graphql-tools' makeExecutableSchema would attach: each subscriber's own iterator of
// the PubSub, and the published event as the field's value.
const jobUpdates = schema.getSubscriptionType().getFields().jobUpdates;
jobUpdates.subscribe = () => pubsub.asyncIterableIterator("jobUpdates");
jobUpdates.resolve = (event) => event;

const server = createServer((request, response) => {
  if (request.method !== "POST" || request.url !== "/publish") {
    response.writeHead(404).end();
    return;
  }
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    pubsub.publish("jobUpdates", JSON.parse(Buffer.concat(chunks)));
    response.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});
const sockets = new WebSocketServer({ server, path: "/graphql" });
useServer({ schema }, sockets);
server.listen(Number(process.argv[2]), "127.0.0.1");
