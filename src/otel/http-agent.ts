/**
 * The HTTP agent of the OTLP/HTTP exporters (their `httpAgentOptions` takes a factory): keep-alive,
 * the collector's root CA when one is configured, and a report of every request as it ends.
 *
 * The exporters retry inside one export call and tell only its final result; every attempt is a
 * request through this agent, so this is where the agent learns at once that the collector stopped
 * answering, and when it answers again (src/otel/export-health.ts).
 */
import http from 'node:http';
import https from 'node:https';

export type AttemptListener = (ok: boolean, error?: Error) => void;

type AddRequest = (req: http.ClientRequest, options: unknown) => void;

/** Reports each request once: a 2xx answer, else the status or the error. */
function observe(req: http.ClientRequest, onAttempt: AttemptListener): void {
  let reported = false;
  const report = (ok: boolean, error?: Error): void => {
    if (reported) return;
    reported = true;
    onAttempt(ok, error);
  };
  req.once('response', (res) => {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) report(true);
    else report(false, new Error(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`));
  });
  req.once('error', (err) => report(false, err));
}

/** A factory for the exporters' `httpAgentOptions`. */
export function observedAgentFactory(
  onAttempt: AttemptListener,
  rootCertificate?: Buffer,
): (protocol: string) => http.Agent {
  return (protocol) => {
    const agent =
      protocol === 'https:'
        ? new https.Agent({ keepAlive: true, ...(rootCertificate !== undefined ? { ca: rootCertificate } : {}) })
        : new http.Agent({ keepAlive: true });
    // addRequest is how every request reaches an agent (undocumented, and what proxy agents hook too).
    const hooked = agent as unknown as { addRequest: AddRequest };
    const addRequest = hooked.addRequest;
    hooked.addRequest = function (this: http.Agent, req, options) {
      observe(req, onAttempt);
      addRequest.call(this, req, options);
    };
    return agent;
  };
}
