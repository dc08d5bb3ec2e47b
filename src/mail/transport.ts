import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from '../base/logger.ts';

export interface OutgoingMail {
  from: { name: string; address: string };
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/**
 * SMTP when SMTP_URL is set; otherwise the dev outbox: each message is written as an .eml file
 * under `$DATA_DIR/outbox/` (open it in any mail client) and one log line names it.
 */
export function createMailTransport(opts: { smtpUrl: string | undefined; dataDir: string; log: Logger }): MailTransport {
  if (opts.smtpUrl) {
    const url = new URL(opts.smtpUrl);
    const secure = url.protocol === 'smtps:';
    // Short timeouts: a send must finish well within the outbox worker's lease (120 s).
    const smtp = nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port) || (secure ? 465 : 587),
      secure,
      ...(url.username ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    return {
      kind: 'smtp',
      async send(mail) {
        await smtp.sendMail(mail);
      },
      close: () => smtp.close(),
    };
  }
  const dir = join(opts.dataDir, 'outbox');
  const eml = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    kind: 'outbox',
    async send(mail) {
      const info = await eml.sendMail(mail);
      await mkdir(dir, { recursive: true });
      const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${info.messageId.replace(/[^\w.-]/g, '')}.eml`);
      // Written then renamed, so a reader never sees half a message.
      await writeFile(`${file}.tmp`, info.message as Buffer);
      await rename(`${file}.tmp`, file);
      opts.log.info({ to: mail.to, subject: mail.subject, file }, 'mail written to the dev outbox');
    },
    close: () => eml.close(),
  };
}
