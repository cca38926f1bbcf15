import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedactor } from '../../src/enrich/redact';

const { query, path } = createRedactor();

test('names containing a secret pattern are redacted, case-insensitively', () => {
  assert.equal(query('apikey=abc&page=2'), 'apikey=REDACTED&page=2');
  assert.equal(query('API_KEY=abc&Token=t&x=1'), 'API_KEY=REDACTED&Token=REDACTED&x=1');
  assert.equal(
    query(
      'access_token=a&password=b&secret=c&signature=d&sig=e&auth=f&jwt=g&session=h&client_secret=i&api-key=j&key=k',
    ),
    'access_token=REDACTED&password=REDACTED&secret=REDACTED&signature=REDACTED&sig=REDACTED&auth=REDACTED&jwt=REDACTED&session=REDACTED&client_secret=REDACTED&api-key=REDACTED&key=REDACTED',
  );
  assert.equal(query('X-Amz-Signature=abc&X-Amz-Credential=x'), 'X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED');
  // the names that leaked with the exact list
  assert.equal(
    query('auth_token=1&access-token=2&private_token=3&client-secret=4&secret_key=5&passwd=6&pwd=7&credentials=8'),
    'auth_token=REDACTED&access-token=REDACTED&private_token=REDACTED&client-secret=REDACTED&secret_key=REDACTED&passwd=REDACTED&pwd=REDACTED&credentials=REDACTED',
  );
  assert.equal(query('code=abc&zipcode=1'), 'code=REDACTED&zipcode=1', 'code only as a whole name');
  assert.equal(query('q=kong&page=2&sort=asc'), 'q=kong&page=2&sort=asc', 'nothing secret: unchanged');
});

test('separators, array suffixes, encodings and odd input', () => {
  assert.equal(query('a=1;token=x;b=2'), 'a=1;token=REDACTED;b=2', '; separates pairs too');
  assert.equal(
    query('token[]=x&password[0]=y&user[password]=z'),
    'token[]=REDACTED&password[0]=REDACTED&user[password]=REDACTED',
  );
  assert.equal(query('api%5Fkey=abc&%74oken=t'), 'api%5Fkey=REDACTED&%74oken=REDACTED', 'percent-encoded names');
  assert.equal(
    query('redirect=https%3A%2F%2Fa%2F%3Ftoken%3Dabc&x=1'),
    'redirect=REDACTED&x=1',
    'an encoded URL carrying a secret is hidden whole',
  );
  assert.equal(query('next=%2Fhome%3Fpage%3D2'), 'next=%2Fhome%3Fpage%3D2', 'an encoded URL without one is kept');
  assert.equal(query('token='), 'token=', 'nothing to hide');
  assert.equal(query('token'), 'token', 'a flag without value');
  assert.equal(query('%E0%A4%A=1&token=x'), '%E0%A4%A=1&token=REDACTED', 'a bad escape does not throw');
  assert.equal(query(''), '');
  assert.equal(query('token=a=b'), 'token=REDACTED');
  const deep = `r=${'%25'.repeat(2000)}3Ftoken%3Dx`;
  assert.doesNotThrow(() => query(deep), 'deeply encoded input is bounded');
});

test('path parameters after ; are redacted the same way', () => {
  assert.equal(path('/app;jsessionid=ABC123/x'), '/app;jsessionid=REDACTED/x');
  assert.equal(path('/a;v=1;token=s/b;sessionid=t'), '/a;v=1;token=REDACTED/b;sessionid=REDACTED');
  assert.equal(path('/api/orders/42'), '/api/orders/42', 'no parameters: unchanged');
  assert.equal(path('/a;b'), '/a;b', 'a parameter without a value');
});

test('REDACT_QUERY_KEYS adds patterns, and -name turns a default off', () => {
  const r = createRedactor(['Customer_Ssn', ' otp ', '-key', '-code']);
  assert.equal(
    r.query('customer_ssn=1&OTP=2&apikey=3&q=4&code=5'),
    'customer_ssn=REDACTED&OTP=REDACTED&apikey=3&q=4&code=5',
  );
  assert.equal(r.query('token=x&keyboard=y'), 'token=REDACTED&keyboard=y');
  assert.equal(createRedactor().query('keyboard=y'), 'keyboard=REDACTED', 'the default errs on the safe side');
});
