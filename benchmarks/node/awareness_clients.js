// N stock y-websocket clients with awareness on, in one Node process, for the awareness
// scenario of benchmarks/relay_fanout.py.
//
//   node awareness_clients.js <ws-url-base> <room> <clients> <seconds>
//
// Every client sets a local state and keeps it (y-websocket renews it every 15 s). Prints one
// JSON line per second ({"ev": "tick", ...}) and a final {"ev": "done", ...} with the
// awareness and sync messages the clients received and how many states each one sees.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, nArg, secondsArg] = process.argv.slice(2)
const n = Number(nArg || 100)
const seconds = Number(secondsArg || 20)
const counts = { awareness: 0, sync: 0, other: 0 }

class CountingWebSocket extends WebSocket {
  constructor (...args) {
    super(...args)
    this.addEventListener('message', (e) => {
      const first = e.data instanceof ArrayBuffer ? new Uint8Array(e.data)[0] : e.data[0]
      if (first === 1) counts.awareness++
      else if (first === 0) counts.sync++
      else counts.other++
    })
  }
}

const providers = []
for (let i = 0; i < n; i++) {
  const doc = new Y.Doc()
  const p = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: CountingWebSocket, disableBc: true })
  p.awareness.setLocalStateField('user', { name: `client ${i} ✓`, color: '#' + (i * 2654435761 % 0xffffff).toString(16) })
  providers.push(p)
}
const seen = () => providers.map((p) => p.awareness.getStates().size)
const connected = () => providers.filter((p) => p.wsconnected).length
const started = Date.now()
const tick = setInterval(() => {
  process.stdout.write(JSON.stringify({ ev: 'tick', t: (Date.now() - started) / 1000, connected: connected(), ...counts }) + '\n')
}, 1000)
setTimeout(() => {
  clearInterval(tick)
  const s = seen()
  process.stdout.write(JSON.stringify({
    ev: 'done',
    clients: n,
    seconds,
    connected: connected(),
    awareness_received: counts.awareness,
    sync_received: counts.sync,
    states_seen_min: Math.min(...s),
    states_seen_max: Math.max(...s)
  }) + '\n')
  for (const p of providers) p.destroy()
  setTimeout(() => process.exit(0), 200)
}, seconds * 1000)
