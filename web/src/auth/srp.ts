// Cognito's SRP-6a password verifier (USER_SRP_AUTH → PASSWORD_VERIFIER), with native BigInt and WebCrypto.
// The math and encodings follow AWS's own client (amazon-cognito-identity-js AuthenticationHelper): a 3072-bit
// group, k = H(N | g), x = H(salt | H(poolName + userId + ":" + password)), HKDF "Caldera Derived Key" → 16 bytes,
// and an HMAC over poolName | userId | secret block | timestamp. tests/unit/test_console_srp.py checks every value
// against pycognito, an independent client used against real Cognito. Why not Amplify: docs/decisions.md.

const N_HEX =
  "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
  "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
  "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
  "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
  "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
  "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
  "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C" +
  "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";
const N = BigInt("0x" + N_HEX);
const G = 2n;
const INFO = "Caldera Derived Key";
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const encoder = new TextEncoder();

export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = ((base % modulus) + modulus) % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

/** Hex of a non-negative integer, even length, with a leading 00 when the top bit is set (a positive number). */
export function padHex(value: bigint): string {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  else if ("89abcdef".includes(hex[0])) hex = "00" + hex;
  return hex;
}

export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(key: Uint8Array<ArrayBuffer>, message: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, message));
}

async function hexHash(hex: string): Promise<string> {
  return bytesToHex(await sha256(hexToBytes(hex)));
}

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const raw = atob(b64);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function bytesToBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** Cognito's TIMESTAMP: "Tue Sep 5 08:05:07 UTC 2023" (day not padded, time padded). */
export function cognitoTimestamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return (
    `${WEEKDAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} UTC ${date.getUTCFullYear()}`
  );
}

export interface SrpClient {
  /** SRP_A for InitiateAuth, in hex. */
  srpA: string;
  /** The PASSWORD_VERIFIER challenge responses (without USERNAME, which is USER_ID_FOR_SRP). */
  passwordClaim(params: PasswordChallenge, password: string, now?: Date): Promise<PasswordClaim>;
}

export interface PasswordChallenge {
  SRP_B: string;
  SALT: string;
  SECRET_BLOCK: string;
  USER_ID_FOR_SRP: string;
}

export interface PasswordClaim {
  PASSWORD_CLAIM_SECRET_BLOCK: string;
  PASSWORD_CLAIM_SIGNATURE: string;
  TIMESTAMP: string;
}

function randomSmallA(): bigint {
  return BigInt("0x" + bytesToHex(crypto.getRandomValues(new Uint8Array(128)))) % N;
}

/** A new client for one sign-in. ``smallA`` is for tests only: it is random otherwise. */
export async function srpClient(userPoolId: string, smallA?: bigint): Promise<SrpClient> {
  const poolName = userPoolId.split("_")[1];
  let a = smallA ?? randomSmallA();
  let A = modPow(G, a, N);
  while (A === 0n) {
    a = randomSmallA();
    A = modPow(G, a, N);
  }
  const secretA = a;
  const k = BigInt("0x" + (await hexHash(padHex(N) + padHex(G))));

  return {
    srpA: A.toString(16),
    async passwordClaim(params, password, now = new Date()) {
      const B = BigInt("0x" + params.SRP_B);
      if (B % N === 0n) throw new Error("The server's SRP_B is invalid.");
      const u = BigInt("0x" + (await hexHash(padHex(A) + padHex(B))));
      if (u === 0n) throw new Error("The SRP scrambling parameter is zero.");
      const userHash = bytesToHex(await sha256(encoder.encode(`${poolName}${params.USER_ID_FOR_SRP}:${password}`)));
      const x = BigInt("0x" + (await hexHash(padHex(BigInt("0x" + params.SALT)) + userHash)));
      const base = B - k * modPow(G, x, N);
      const S = modPow(base, secretA + u * x, N);
      const prk = await hmac(hexToBytes(padHex(u)), hexToBytes(padHex(S)));
      const key = (await hmac(prk, concat(encoder.encode(INFO), new Uint8Array([1])))).slice(0, 16);
      const timestamp = cognitoTimestamp(now);
      const message = concat(
        encoder.encode(poolName),
        encoder.encode(params.USER_ID_FOR_SRP),
        base64ToBytes(params.SECRET_BLOCK),
        encoder.encode(timestamp),
      );
      return {
        PASSWORD_CLAIM_SECRET_BLOCK: params.SECRET_BLOCK,
        PASSWORD_CLAIM_SIGNATURE: bytesToBase64(await hmac(key, message)),
        TIMESTAMP: timestamp,
      };
    },
  };
}
