import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Node's BlockList does the CIDR matching; these are the ranges of RFC 6890 worth naming. */
function list(v4: [string, number][], v6: [string, number][]): BlockList {
  const b = new BlockList();
  for (const [a, p] of v4) b.addSubnet(a, p, 'ipv4');
  for (const [a, p] of v6) b.addSubnet(a, p, 'ipv6');
  return b;
}

const SCOPES: [string, BlockList][] = [
  ['unspecified', list([['0.0.0.0', 8]], [['::', 128]])],
  ['loopback', list([['127.0.0.0', 8]], [['::1', 128]])],
  ['private', list([['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16]], [['fc00::', 7]])],
  ['cgnat', list([['100.64.0.0', 10]], [])],
  ['link-local', list([['169.254.0.0', 16]], [['fe80::', 10]])],
  ['multicast', list([['224.0.0.0', 4]], [['ff00::', 8]])],
];

/**
 * A node sees the same few thousand addresses over and over; BlockList.check allocates a
 * SocketAddress per call, so answers are remembered (bounded: the cache is dropped when full).
 */
class BoundedCache<V> {
  private map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    return this.map.get(k);
  }
  set(k: string, v: V): V {
    if (this.map.size >= this.max) this.map = new Map();
    this.map.set(k, v);
    return v;
  }
}

const scopeCache = new BoundedCache<string | null>(16_384);

export function ipScope(ip: string | null): string | null {
  if (ip === null) return null;
  const hit = scopeCache.get(ip);
  if (hit !== undefined) return hit;
  return scopeCache.set(ip, computeScope(ip));
}

function computeScope(ip: string): string | null {
  const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : null;
  if (family === null) return null;
  if (family === 'ipv6' && ip.toLowerCase().startsWith('::ffff:') && isIPv4(ip.slice(7))) return computeScope(ip.slice(7));
  for (const [name, b] of SCOPES) if (b.check(ip, family)) return name;
  return 'public';
}

/** A configured CIDR → name table (enrich.networks), first match wins. */
export class NetworkNames {
  private readonly nets: [string, BlockList][];
  private readonly cache = new BoundedCache<string | null>(16_384);
  constructor(networks: readonly { name: string; cidrs: readonly string[] }[]) {
    this.nets = networks.map((n) => {
      const b = new BlockList();
      for (const c of n.cidrs) {
        const [addr, len] = c.split('/') as [string, string | undefined];
        const family = isIPv4(addr) ? 'ipv4' : 'ipv6';
        b.addSubnet(addr, len === undefined ? (family === 'ipv4' ? 32 : 128) : Number(len), family);
      }
      return [n.name, b];
    });
  }
  nameOf(ip: string | null): string | null {
    if (ip === null || this.nets.length === 0) return null;
    const hit = this.cache.get(ip);
    return hit !== undefined ? hit : this.cache.set(ip, this.lookup(ip));
  }

  private lookup(ip: string): string | null {
    const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : null;
    if (!family) return null;
    for (const [name, b] of this.nets) if (b.check(ip, family)) return name;
    return null;
  }
}
