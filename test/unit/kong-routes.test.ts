import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KongAdminRoutes } from '../../src/kong/admin-api';
import { RouteTable, type AdminRoute } from '../../src/kong/route-table';
import type { HttpExchange } from '../../src/requests/types';

const services = [
  { id: 's1', name: 'orders' },
  { id: 's2', name: null },
];

function exchange(
  method: string,
  path: string,
  host = 'gw.example.com:8000',
  direction: 'server' | 'client' = 'server',
): HttpExchange {
  return { direction, method, path, host } as HttpExchange;
}

function table(routes: AdminRoute[]): RouteTable {
  const t = new RouteTable();
  t.load(routes, services);
  return t;
}

test('longest prefix wins; route and service named; Kong-generated 404 has no route', () => {
  const t = table([
    { id: 'r1', name: 'api', paths: ['/api'], service: { id: 's1' } },
    { id: 'r2', name: 'api-v2', paths: ['/api/v2'], service: { id: 's2' } },
  ]);
  assert.deepEqual(t.resolve(exchange('GET', '/api/v2/orders/17')), {
    routeName: 'api-v2',
    serviceName: 's2',
    route: '/api/v2',
  });
  assert.deepEqual(t.resolve(exchange('GET', '/api/orders')), {
    routeName: 'api',
    serviceName: 'orders',
    route: '/api',
  });
  assert.equal(t.resolve(exchange('GET', '/nope')), undefined);
  assert.equal(
    t.resolve(exchange('GET', '/api/x', undefined, 'client')),
    undefined,
    'only server exchanges take routes',
  );
});

test('regex paths by priority before prefixes; methods and hosts filter; unnamed routes use their id', () => {
  const t = table([
    { id: 'r1', name: 'users-by-id', paths: ['~/users/\\d+$'], regex_priority: 10, service: { id: 's1' } },
    { id: 'r2', name: 'users', paths: ['/users'], methods: ['GET'], service: { id: 's1' } },
    { id: 'r3', paths: ['/users'], hosts: ['*.internal'], service: { id: 's1' } },
    { id: 'r4', name: 'grpc', protocols: ['grpc'], paths: ['/'] },
    { id: 'r5', name: 'bad-regex', paths: ['~/(?<x'] },
  ]);
  assert.equal(t.resolve(exchange('GET', '/users/42'))?.route, '/users/\\d+$');
  assert.equal(t.resolve(exchange('GET', '/users/list'))?.routeName, 'users');
  assert.equal(t.resolve(exchange('POST', '/users/list')), undefined, 'method filter');
  assert.equal(
    t.resolve(exchange('POST', '/users/list', 'a.internal:8000'))?.routeName,
    'r3',
    'wildcard host, id as name',
  );
  assert.equal(t.resolve(exchange('GET', '/')), undefined, 'grpc-only routes are left out');
});

test('the Admin API poller follows pages, and keeps the last table when Kong stops answering', async () => {
  let up = true;
  const server = http.createServer((req, res) => {
    if (!up) {
      res.writeHead(503).end();
      return;
    }
    const url = new URL(req.url!, 'http://x');
    res.setHeader('Content-Type', 'application/json');
    if (url.pathname === '/routes' && !url.searchParams.get('offset')) {
      res.end(
        JSON.stringify({
          data: [{ id: 'r1', name: 'api', paths: ['/api'], service: { id: 's1' } }],
          next: '/routes?offset=abc',
        }),
      );
    } else if (url.pathname === '/routes') {
      res.end(JSON.stringify({ data: [{ id: 'r2', name: 'web', paths: ['/'], service: { id: 's1' } }], next: null }));
    } else {
      res.end(JSON.stringify({ data: services, next: null }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(`info ${m}`), warn: (m: string) => logs.push(`warn ${m}`), debug() {} };
  const admin = new KongAdminRoutes({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` }, log);
  try {
    await admin.start();
    assert.equal(admin.table.size, 2, 'both pages');
    assert.equal(admin.table.resolve(exchange('GET', '/api/x'))?.routeName, 'api');
    up = false;
    await admin.refresh();
    await admin.refresh();
    assert.equal(admin.table.size, 2, 'last good table kept');
    assert.equal(logs.filter((l) => l.startsWith('warn')).length, 1, 'said once');
  } finally {
    admin.stop();
    server.close();
  }
});
