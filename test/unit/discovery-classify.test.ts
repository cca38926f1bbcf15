import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWorkerTitle, matchKongMaster, parseMasterTitle } from '../../src/discovery/classify';
import { parseStat } from '../../src/discovery/procfs';

const KONG_MASTER = 'nginx: master process /usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf';

describe('discovery classification', () => {
  it('reads the prefix from a master title', () => {
    assert.deepEqual(parseMasterTitle(KONG_MASTER), { prefix: '/usr/local/kong' }, 'separate -p');
    assert.deepEqual(parseMasterTitle('nginx: master process nginx -p/srv/kong/ -c x'), { prefix: '/srv/kong' }, '-pX');
    assert.deepEqual(parseMasterTitle('nginx: master process /usr/sbin/nginx -g daemon off;'), {}, 'no prefix');
    assert.equal(parseMasterTitle('/usr/sbin/nginx -p /usr/local/kong -c nginx.conf'), undefined, 'raw argv');
  });

  it('recognises Kong masters by prefix component, comm or binary name', () => {
    const m = (cmdline: string, comm = 'nginx', exePath = '/usr/sbin/nginx', prefix?: string) =>
      matchKongMaster({ cmdline, comm, exePath }, 'kong', prefix);
    assert.ok(m(KONG_MASTER), 'Kong image master');
    assert.ok(m('nginx: master process /usr/sbin/nginx -p /tmp/kw-gateway-1/kong -c nginx.conf'), 'fixture');
    assert.equal(m('nginx: master process /usr/sbin/nginx -p /etc/nginx -c nginx.conf'), undefined, 'other nginx');
    assert.equal(
      m('nginx: master process /usr/sbin/nginx -p /opt/kongish -c a'),
      undefined,
      'component, not substring',
    );
    assert.ok(m('nginx: master process kong -c /etc/x.conf', 'kong'), 'comm kong');
    assert.ok(m('nginx: master process /opt/bin/kong', 'nginx', '/opt/bin/kong'), 'binary named kong');
    assert.equal(m('/usr/local/openresty/nginx/sbin/nginx -p /tmp/resty_x/ -c conf/nginx.conf'), undefined, 'health');
  });

  it('honours an explicit prefix exactly', () => {
    const m = (cmdline: string, prefix: string) =>
      matchKongMaster({ cmdline, comm: 'nginx', exePath: '/usr/sbin/nginx' }, 'kong', prefix);
    assert.ok(m(KONG_MASTER, '/usr/local/kong/'), 'trailing slash ignored');
    assert.equal(m(KONG_MASTER, '/usr/local'), undefined, 'parent prefix is not a match');
    assert.ok(m('nginx: master process nginx -p /srv/gw -c a', '/srv/gw'), 'any prefix when configured');
  });

  it("recognises a master just exec'd, before it sets its title, only by a Kong prefix", () => {
    const m = (cmdline: string, prefix?: string) =>
      matchKongMaster({ cmdline, comm: 'nginx', exePath: '/usr/sbin/nginx' }, 'kong', prefix, true);
    const argv = '/usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf';
    assert.deepEqual(m(argv), { prefix: '/usr/local/kong' }, 'the entrypoint exec');
    assert.deepEqual(m('/usr/sbin/nginx -p/srv/gw -c a', '/srv/gw'), { prefix: '/srv/gw' }, 'configured prefix');
    assert.equal(
      m('/usr/local/openresty/nginx/sbin/nginx -p /tmp/resty_x/ -c conf/nginx.conf'),
      undefined,
      'kong health',
    );
    assert.equal(m('/usr/sbin/nginx -c /etc/nginx/nginx.conf'), undefined, 'no prefix: not provably Kong');
    assert.equal(m('/usr/bin/python3 -p /usr/local/kong'), undefined, 'not nginx');
    const scan = matchKongMaster({ cmdline: argv, comm: 'nginx', exePath: '/usr/sbin/nginx' }, 'kong');
    assert.equal(scan, undefined, 'a scan still waits for the title');
  });

  it('recognises worker titles', () => {
    assert.ok(isWorkerTitle('nginx: worker process'), 'worker');
    assert.ok(isWorkerTitle('nginx: worker process is shutting down'), 'draining worker');
    assert.equal(isWorkerTitle('nginx: cache manager process'), false, 'cache manager');
    assert.equal(isWorkerTitle('nginx: privileged agent process'), false, 'privileged agent');
  });

  it('parses stat with odd comm values', () => {
    const tail = Array(17).fill('0').join(' ');
    assert.deepEqual(
      parseStat(`42 (a) b (c)) S 7 ${tail} 12345 0 0`),
      { comm: 'a) b (c)', ppid: 7, startTime: 12345 },
      'comm with parentheses',
    );
    assert.equal(parseStat('garbage'), undefined, 'garbage');
    assert.equal(parseStat('1 (x) S'), undefined, 'truncated');
  });
});
