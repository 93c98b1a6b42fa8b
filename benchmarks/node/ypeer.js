// A stock y-websocket (v3) + yjs (v13) client, driven over stdin/stdout with JSON lines.
//
//   node ypeer.js <ws-url-base> <room> <name> [--no-awareness] [--map NAME]
//
// The shared map is the root type NAME (default "m"; crdtsync's Replica uses "root"), the
// shared text is "t".
//
// stdin commands (one JSON object per line):
//   {"op": "set", "key": "k", "value": <json>}      the shared map: set a key
//   {"op": "text_append", "text": "…"}              text "t": append at the end
//   {"op": "awareness", "state": <json|null>}       set (or clear) the local awareness state
//   {"op": "dump"}                                  report the current state now
//   {"op": "exit"}                                  destroy the provider and exit 0
// stdout events (one JSON object per line), all with "name":
//   {"ev": "status", "status": "connected"|"disconnected"|"connecting"}
//   {"ev": "synced"}
//   {"ev": "state", "map": {...}, "text": "..."}    after every document change (and on dump)
//   {"ev": "awareness", "clientID": n, "states": {"<id>": state}}   after every awareness change
//   {"ev": "error", "message": "..."}
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const [base, room, name, ...flags] = process.argv.slice(2)
if (!base || !room || !name) {
  process.stderr.write('usage: node ypeer.js <ws-url-base> <room> <name> [--no-awareness]\n')
  process.exit(2)
}
const out = (obj) => process.stdout.write(JSON.stringify({ name, ...obj }) + '\n')

const doc = new Y.Doc()
const mapAt = flags.indexOf('--map')
const map = doc.getMap(mapAt >= 0 ? flags[mapAt + 1] : 'm')
const text = doc.getText('t')
const provider = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
const reportState = () => out({ ev: 'state', map: map.toJSON(), text: text.toString() })
const reportAwareness = () => {
  const states = {}
  for (const [id, state] of provider.awareness.getStates()) states[String(id)] = state
  out({ ev: 'awareness', clientID: doc.clientID, states })
}
provider.on('status', (e) => out({ ev: 'status', status: e.status }))
provider.on('sync', (synced) => { if (synced) out({ ev: 'synced' }) })
provider.on('connection-error', () => out({ ev: 'error', message: 'connection error' }))
doc.on('update', reportState)
provider.awareness.on('change', reportAwareness)
if (flags.includes('--no-awareness')) provider.awareness.setLocalState(null)

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let cmd
  try { cmd = JSON.parse(line) } catch (e) { out({ ev: 'error', message: 'bad command: ' + line }); return }
  switch (cmd.op) {
    case 'set': map.set(cmd.key, cmd.value); break
    case 'text_append': text.insert(text.length, cmd.text); break
    case 'awareness': provider.awareness.setLocalState(cmd.state); break
    case 'dump': reportState(); reportAwareness(); break
    case 'exit': provider.destroy(); doc.destroy(); process.exit(0); break
    default: out({ ev: 'error', message: 'unknown op: ' + cmd.op })
  }
})
rl.on('close', () => { provider.destroy(); process.exit(0) })
