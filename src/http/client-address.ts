/**
 * The client's address. The peer's address is the client's unless the peer is a trusted proxy
 * (TRUST_PROXY); then X-Forwarded-For is read from the right, past every trusted hop, and the first
 * address not trusted is the client. Anyone can send X-Forwarded-For, so from an untrusted peer it is
 * ignored: otherwise each request could claim a fresh address and walk around per-address limits.
 */
import { BlockList, isIP } from "node:net";

const trustLists = new WeakMap<string[], BlockList>();

function trustListOf(trusted: string[]): BlockList {
  let list = trustLists.get(trusted);
  if (!list) {
    list = new BlockList();
    for (const entry of trusted) {
      const [address, bits] = entry.split("/");
      const family = isIP(address) === 6 ? "ipv6" : "ipv4";
      if (bits === undefined) list.addAddress(address, family);
      else list.addSubnet(address, Number(bits), family);
    }
    trustLists.set(trusted, list);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  if (!family) return false;
  return list.check(address, family === 6 ? "ipv6" : "ipv4");
}

export function clientAddress(peer: string, forwardedFor: string | null, trusted: string[]): string {
  if (trusted.length === 0 || !forwardedFor) return peer;
  const list = trustListOf(trusted);
  if (!isTrusted(list, peer)) return peer;
  const hops = forwardedFor.split(",").map((hop) => hop.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i];
    // Something that is no address at all ends the chain: what stands left of it cannot be believed.
    if (!isIP(hop)) return i === hops.length - 1 ? peer : hops[i + 1];
    if (!isTrusted(list, hop)) return hop;
  }
  return hops[0] ?? peer;
}
