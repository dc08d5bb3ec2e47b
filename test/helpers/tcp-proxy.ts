import { createConnection, createServer, type Socket } from 'node:net';
import pg from 'pg';
import { startTestApp, type TestApp } from './app.ts';
import { createTestDatabase } from './database.ts';

export interface TcpProxy {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** Destroys every open connection, both sides, and from now on ends each new one at once. */
  cut(): void;
  /**
   * Keeps every connection open but carries nothing more, either way, and does the same to new
   * ones: a network that drops packets rather than refusing them. Frozen connections stay frozen
   * after `restore()`, as TCP sessions whose packets were lost do.
   */
  freeze(): void;
  /** Accepts and forwards again. */
  restore(): void;
  /** Whether it is cut. */
  readonly isCut: boolean;
  /** How many connections it has forwarded, and how many it refused while cut. */
  readonly counts: { forwarded: number; refused: number };
  close(): Promise<void>;
}

/**
 * A TCP proxy between the app and its database, to take the database away mid-load: `cut()` is
 * what the app sees when PostgreSQL goes down or the network between them fails — its
 * connections reset under running queries and new ones closed as soon as they open.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let isCut = false;
  let frozen = false;
  const pairs = new Set<[Socket, Socket]>();
  const counts = { forwarded: 0, refused: 0 };

  const server = createServer((client) => {
    if (isCut) {
      counts.refused++;
      client.destroy();
      return;
    }
    counts.forwarded++;
    const upstream = createConnection(target);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      // Errors are what a cut is for; each side ends the other.
      socket.on('error', () => {});
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const pair: [Socket, Socket] = [client, upstream];
    client.on('close', () => pairs.delete(pair));
    if (frozen) return silence(pair);
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
  });

  /** Nothing more crosses; what arrives stays unread in the sockets' buffers. */
  function silence([client, upstream]: [Socket, Socket]) {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };

  return {
    port,
    cut() {
      isCut = true;
      // A reset, not a close: what the app sees when the server dies or the network fails.
      for (const socket of open) socket.resetAndDestroy();
      open.clear();
    },
    freeze() {
      frozen = true;
      for (const pair of pairs) silence(pair);
      pairs.clear();
    },
    restore() {
      isCut = false;
      frozen = false;
    },
    get isCut() {
      return isCut;
    },
    counts,
    close() {
      for (const socket of open) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The app on a fresh database it reaches through a proxy the test controls, and the test's own connection around it. */
export interface AppBehindProxy {
  app: TestApp;
  proxy: TcpProxy;
  /** The test's view of the database, not through the proxy. */
  direct: pg.Client;
  close(): Promise<void>;
}

export async function startAppBehindProxy(env: Record<string, string>): Promise<AppBehindProxy> {
  const database = await createTestDatabase();
  const real = new URL(database.url);
  const proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
  const viaProxy = new URL(database.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  const app = await startTestApp({ databaseUrl: viaProxy.href, env });
  const direct = new pg.Client({ connectionString: database.url });
  await direct.connect();
  return {
    app,
    proxy,
    direct,
    async close() {
      proxy.restore();
      await direct.end();
      await app.stop();
      await proxy.close();
      await database.drop();
    },
  };
}
