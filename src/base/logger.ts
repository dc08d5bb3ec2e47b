import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs. Anything that could carry a secret is redacted at the source. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tessera' },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.password', '*.client_secret', '*.admin_api_key', '*.token'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
