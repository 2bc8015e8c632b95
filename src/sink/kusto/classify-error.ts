/**
 * What to do with a failed ingestion request, decided from what ADX and the SDK report: the HTTP
 * status, the error body's `@permanent` flag and code, or the network failure.
 */
export type Verdict =
  | { action: 'retry'; reason: 'throttled' | 'server' | 'network' | 'timeout' | 'auth' | 'unknown'; status: number | null; detail: string }
  | { action: 'split'; reason: 'too_large'; status: number | null; detail: string }
  | { action: 'fallback'; reason: 'streaming_disabled'; status: number | null; detail: string }
  | { action: 'dead_letter'; reason: 'permanent'; status: number | null; detail: string };

interface AdxErrorBody {
  error?: { code?: string; message?: string; '@type'?: string; '@message'?: string; '@permanent'?: boolean };
}

interface HttpishError {
  name?: string;
  code?: string;
  message?: string;
  inner?: unknown;
  response?: { status?: number; data?: unknown };
}

function bodyOf(data: unknown): AdxErrorBody['error'] | undefined {
  let d = data;
  if (typeof d === 'string') {
    try {
      d = JSON.parse(d) as unknown;
    } catch {
      return undefined;
    }
  }
  return typeof d === 'object' && d !== null ? (d as AdxErrorBody).error : undefined;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_NETWORK', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

export function classifyIngestError(err: unknown): Verdict {
  const e = (err ?? {}) as HttpishError;
  const inner = (e.name === 'ThrottlingError' ? e.inner : err) as HttpishError | undefined;
  if (e.name === 'ThrottlingError') return { action: 'retry', reason: 'throttled', status: 429, detail: 'ADX throttled the request (429)' };
  // A token that cannot be had (identity endpoint down, federation not yet set up, an expired
  // secret) is fixed outside, then the same batch goes through: retried, never dead-lettered.
  if (e.name === 'AuthenticationError' || e.name === 'CredentialUnavailableError' || e.name === 'AggregateAuthenticationError') {
    return { action: 'retry', reason: 'auth', status: null, detail: `no token for ADX: ${e.message ?? ''}` };
  }
  const status = inner?.response?.status ?? null;
  const body = bodyOf(inner?.response?.data);
  const detail = [status ? `HTTP ${status}` : null, body?.code, body?.['@message'] ?? body?.message ?? inner?.message].filter(Boolean).join(': ');
  if (status === null) {
    if (inner?.code === 'ECONNABORTED' || inner?.code === 'ETIMEDOUT') return { action: 'retry', reason: 'timeout', status, detail };
    if (inner?.code && NETWORK_CODES.has(inner.code)) return { action: 'retry', reason: 'network', status, detail };
    // The SDK's cloud-info lookup (its first request) wraps the network error into a plain message.
    const named = /\b(E[A-Z_]+|ERR_[A-Z_]+)\b/.exec(inner?.message ?? '');
    if (named && NETWORK_CODES.has(named[1]!)) return { action: 'retry', reason: named[1] === 'ETIMEDOUT' ? 'timeout' : 'network', status, detail };
    return { action: 'retry', reason: 'unknown', status, detail: detail || String(err) };
  }
  const text = `${body?.code ?? ''} ${body?.['@type'] ?? ''} ${body?.['@message'] ?? body?.message ?? ''}`.toLowerCase();
  if (status === 413 || text.includes('entitytoolarge') || text.includes('exceeds the maximum') || text.includes('too large')) {
    return { action: 'split', reason: 'too_large', status, detail };
  }
  if (text.includes('streamingingestionpolicynotenabled') || (text.includes('streaming ingestion') && (text.includes('not enabled') || text.includes('disabled')))) {
    return { action: 'fallback', reason: 'streaming_disabled', status, detail };
  }
  if (body?.['@permanent'] === true) return { action: 'dead_letter', reason: 'permanent', status, detail };
  // Unauthorized or forbidden: an expired token or a role not (yet) granted, fixed outside.
  if (status === 401 || status === 403) return { action: 'retry', reason: 'auth', status, detail };
  if (body?.['@permanent'] === false) return { action: 'retry', reason: status === 429 ? 'throttled' : 'server', status, detail };
  if (status === 408 || status === 429 || status >= 500) return { action: 'retry', reason: status === 429 ? 'throttled' : 'server', status, detail };
  return { action: 'dead_letter', reason: 'permanent', status, detail };
}
