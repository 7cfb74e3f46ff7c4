import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Plays systemd's side of sd_notify for tests: a datagram Unix socket (Node
 * cannot bind one, so python3 does) that records every state message.
 */
export class NotifyReceiver {
  readonly messages: string[] = [];
  private py: ChildProcess | null = null;

  constructor(readonly address: string) {}

  async start(): Promise<this> {
    const bind = this.address.startsWith('@') ? `'\\0${this.address.slice(1)}'` : `'${this.address}'`;
    const py = spawn('python3', ['-u', '-c', [
      'import socket',
      's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
      `s.bind(${bind})`,
      'print("ready",flush=True)',
      'while True:',
      '    print(s.recv(4096).decode().replace("\\n","|"),flush=True)',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.py = py;
    let buf = '';
    let ready = false;
    py.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l === 'ready' && !ready) ready = true;
        else this.messages.push(l);
      }
    });
    for (let i = 0; i < 500 && !ready; i++) await new Promise((r) => setTimeout(r, 10));
    if (!ready) throw new Error('notify receiver did not start');
    return this;
  }

  stop(): void {
    this.py?.kill('SIGKILL');
    this.py = null;
  }
}
