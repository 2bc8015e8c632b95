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
    // An address is at most 45 characters (IPv6 with an IPv4 tail): longer input is not remembered.
    if (k.length > 45) return v;
    if (this.map.size >= this.max) this.map = new Map();
    this.map.set(k, v);
    return v;
  }
}

const scopeCache = new BoundedCache<string | null>(16_384);

export type IpFamily = 'ipv4' | 'ipv6';

export function ipFamily(ip: string): IpFamily | null {
  return isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : null;
}

/** Add an address or CIDR (`10.0.0.0/8`, `fd00::/8`, `1.2.3.4`) to a BlockList; a bad one throws, naming it. */
export function addCidr(block: BlockList, cidr: string): void {
  const [addr, len] = cidr.split('/') as [string, string | undefined];
  const family = ipFamily(addr);
  const bits = len === undefined ? null : Number(len);
  const max = family === 'ipv4' ? 32 : 128;
  if (!family || (bits !== null && (!Number.isInteger(bits) || bits < 0 || bits > max))) throw new Error(`"${cidr}" is not an IP address or CIDR`);
  if (bits === null) block.addAddress(addr, family);
  else block.addSubnet(addr, bits, family);
}

/** Whether an address (of either family) is in the BlockList; false for anything not an address. */
export function inBlock(block: BlockList, ip: string): boolean {
  const family = ipFamily(ip);
  return family !== null && block.check(ip, family);
}

export function ipScope(ip: string | null): string | null {
  if (ip === null) return null;
  const hit = scopeCache.get(ip);
  if (hit !== undefined) return hit;
  return scopeCache.set(ip, computeScope(ip));
}

function computeScope(ip: string): string | null {
  const family = ipFamily(ip);
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
      for (const c of n.cidrs) addCidr(b, c);
      return [n.name, b];
    });
  }
  nameOf(ip: string | null): string | null {
    if (ip === null || this.nets.length === 0) return null;
    const hit = this.cache.get(ip);
    return hit !== undefined ? hit : this.cache.set(ip, this.lookup(ip));
  }

  private lookup(ip: string): string | null {
    for (const [name, b] of this.nets) if (inBlock(b, ip)) return name;
    return null;
  }
}
