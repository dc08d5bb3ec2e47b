import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { freePort } from './app.ts';

/** A real SMTP server that keeps what it receives, for tests to read and follow links from. */
export class SmtpSink {
  readonly messages: ParsedMail[] = [];
  private waiters: Array<() => void> = [];
  private server: SMTPServer;

  private constructor(readonly port: number) {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, _session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            this.messages.push(mail);
            for (const w of this.waiters.splice(0)) w();
            callback();
          })
          .catch(callback);
      },
    });
  }

  static async start(port?: number): Promise<SmtpSink> {
    const sink = new SmtpSink(port ?? (await freePort()));
    await new Promise<void>((resolve, reject) => {
      sink.server.once('error', reject);
      sink.server.listen(sink.port, '127.0.0.1', () => resolve());
    });
    return sink;
  }

  get url() {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** The first message (received now or later) to `to` whose subject matches. */
  async waitFor(to: string, subject: RegExp, timeoutMs = 15_000): Promise<ParsedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((m) => addressesOf(m).includes(to.toLowerCase()) && subject.test(m.subject ?? ''));
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(
          `no mail to ${to} matching ${subject} within ${timeoutMs} ms; got: ${this.messages.map((m) => `${addressesOf(m)} ${m.subject}`).join(' | ')}`,
        );
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  countTo(to: string) {
    return this.messages.filter((m) => addressesOf(m).includes(to.toLowerCase())).length;
  }

  async stop() {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function addressesOf(m: ParsedMail): string[] {
  const to = Array.isArray(m.to) ? m.to : m.to ? [m.to] : [];
  return to.flatMap((a) => a.value.map((v) => (v.address ?? '').toLowerCase()));
}

/** The first link in a mail's text body that contains `path`. */
export function linkIn(mail: ParsedMail, path: string): string {
  const m = new RegExp(`https?://\\S*${path}\\S*`).exec(mail.text ?? '');
  if (!m) throw new Error(`no ${path} link in:\n${mail.text}`);
  return m[0];
}
