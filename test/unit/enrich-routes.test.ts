import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Exchange } from '../../src/capture/exchange';
import { Method, METHOD_NAMES } from '../../src/capture/exchange-layout';
import { KongAdminRoutes } from '../../src/enrich/kong/admin-api';
import { RouteTable, literalPrefix, type AdminRoute, type RouteInfo } from '../../src/enrich/kong/route-table';

const services = [
  { id: 's1', name: 'orders' },
  { id: 's2', name: null },
];

/** The fields the matcher reads, as a decoded exchange has them. */
function exchange(method: string, path: string, host = 'gw.example.com:8000'): Exchange {
  const known = METHOD_NAMES.indexOf(method);
  return {
    method: known > 0 ? known : Method.Other,
    methodText: known > 0 ? undefined : method,
    path,
    host,
  } as unknown as Exchange;
}

/** What a match names, without the index and span names. */
const named = (info: RouteInfo | undefined) =>
  info && { route: info.route, routeName: info.routeName, serviceName: info.serviceName };

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
  assert.deepEqual(named(t.resolve(exchange('GET', '/api/v2/orders/17'))), {
    routeName: 'api-v2',
    serviceName: 's2',
    route: '/api/v2',
  });
  assert.deepEqual(named(t.resolve(exchange('GET', '/api/orders'))), {
    routeName: 'api',
    serviceName: 'orders',
    route: '/api',
  });
  assert.equal(t.resolve(exchange('GET', '/nope')), undefined);
  assert.equal(
    t.resolve(exchange('GET', '/api/orders')),
    t.resolve(exchange('POST', '/api/x')),
    'one RouteInfo per route path, made at load: nothing allocated per request',
  );
});

test('span names and series indexes are made at load; indexes stay stable across reloads', () => {
  const t = table([
    { id: 'r1', name: 'api', paths: ['/api'], service: { id: 's1' } },
    { id: 'r2', name: 'any' },
  ]);
  const api = t.resolve(exchange('GET', '/api/x'))!;
  assert.equal(api.spanNames[Method.Get], 'GET /api');
  assert.equal(api.spanNames[Method.Other], 'HTTP /api', '_OTHER reads HTTP');
  const any = t.resolve(exchange('GET', '/elsewhere'))!;
  assert.equal(any.route, undefined, 'a route without paths has no http.route');
  assert.equal(any.spanNames[Method.Post], 'POST', 'and its spans are named by the method');
  t.load(
    [
      { id: 'r0', name: 'new', paths: ['/new'] },
      { id: 'r1', name: 'api', paths: ['/api'], service: { id: 's1' } },
    ],
    services,
  );
  const again = t.resolve(exchange('GET', '/api/x'))!;
  assert.equal(again.index, api.index, 'same route, name and service: same series index');
  assert.notEqual(t.resolve(exchange('GET', '/new'))!.index, api.index, 'a new route: a new index');
});

test('regex paths by priority before prefixes; methods and hosts filter; unnamed routes use their id', () => {
  const t = table([
    { id: 'r1', name: 'users-by-id', paths: ['~/users/\\d+$'], regex_priority: 10, service: { id: 's1' } },
    { id: 'r2', name: 'users', paths: ['/users'], methods: ['GET'], service: { id: 's1' } },
    { id: 'r3', paths: ['/users'], hosts: ['*.internal'], service: { id: 's1' } },
    { id: 'r4', name: 'grpc', protocols: ['grpc'], paths: ['/'] },
    { id: 'r5', name: 'bad-regex', paths: ['~/(?<x'] },
    { id: 'r6', name: 'dav', paths: ['/dav'], methods: ['propfind', 'GET'] },
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
  assert.equal(t.resolve(exchange('PROPFIND', '/dav/x'))?.routeName, 'dav', 'a method outside the nine');
  assert.equal(t.resolve(exchange('GET', '/dav/x'))?.routeName, 'dav', 'next to a standard one');
  assert.equal(t.resolve(exchange('MKCOL', '/dav/x')), undefined, 'another unusual method is filtered');
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

test('a regex is only run on paths that start with its literal text', () => {
  assert.equal(literalPrefix('/users/\\d+$'), '/users/');
  assert.equal(literalPrefix('/users?/x'), '/user', 'an optional last character is not required');
  assert.equal(literalPrefix('/a{0,2}'), '/', 'nor one that may repeat zero times');
  assert.equal(literalPrefix('/ab+'), '/ab', 'one or more: still there');
  assert.equal(literalPrefix('/v1|/v2'), '', 'alternatives: nothing is common');
  assert.equal(literalPrefix('(/a)'), '');
  const t = table([
    { id: 'r1', name: 'either', paths: ['~/v1/x|/v2/y'] },
    { id: 'r2', name: 'optional', paths: ['~/items?/\\d+$'] },
  ]);
  assert.equal(t.resolve(exchange('GET', '/v2/y'))?.routeName, 'either', 'every alternative still matches');
  assert.equal(t.resolve(exchange('GET', '/item/7'))?.routeName, 'optional');
  assert.equal(t.resolve(exchange('GET', '/items/7'))?.routeName, 'optional');
  assert.equal(t.resolve(exchange('GET', '/itemz/7')), undefined);
});

test('the longest prefix wins whatever the order; filters fall through to shorter prefixes', () => {
  const t = table([
    { id: 'short', name: 'short', paths: ['/a'] },
    { id: 'long', name: 'long', paths: ['/a/b/c'], hosts: ['only.example.com'] },
    { id: 'mid', name: 'mid', paths: ['/a/b'], methods: ['POST'] },
    { id: 'bare', name: 'bare', methods: ['DELETE'] },
  ]);
  assert.equal(t.resolve(exchange('GET', '/a/b/c/d', 'only.example.com'))?.routeName, 'long');
  assert.equal(t.resolve(exchange('POST', '/a/b/c/d'))?.routeName, 'mid', 'host filter: the next longest');
  assert.equal(t.resolve(exchange('GET', '/a/b/c/d'))?.routeName, 'short', 'method filter: the next');
  assert.equal(t.resolve(exchange('DELETE', '/z'))?.routeName, 'bare', 'no path matched: a route without paths');
  assert.equal(t.resolve(exchange('GET', '/z')), undefined);
});
