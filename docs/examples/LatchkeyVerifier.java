// Verifies a Latchkey credential in a JVM service with the JDK alone (Java 11+): fetches
// Latchkey's JWKS, checks the RS256 signature with the key the token's `kid` names, then
// issuer, audience and expiry. Run as a single file: java LatchkeyVerifier.java <jwks-url>
// <issuer> [<audience>] < tokens (one a line). Revocation is not visible in a signature: services that
// must refuse a revoked credential at once ask POST /api/oauth/introspect as well.

import java.math.BigInteger;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.RSAPublicKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class LatchkeyVerifier {
  private final HttpClient http = HttpClient.newHttpClient(); // the default client: it asks plain-HTTP servers to upgrade to h2c
  private final URI jwksUrl;
  private final String issuer;
  private final String audience;
  private final Map<String, PublicKey> keys = new ConcurrentHashMap<>();
  private volatile Instant fetchedAt = Instant.EPOCH;

  public LatchkeyVerifier(URI jwksUrl, String issuer, String audience) {
    this.jwksUrl = jwksUrl;
    this.issuer = issuer;
    this.audience = audience;
  }

  /** Returns the token's claims as JSON, or throws with the reason it is refused. */
  public String verify(String token) throws Exception {
    String[] parts = token.trim().split("\\.", -1);
    if (parts.length != 3) throw new SecurityException("not a signed token");
    String header = decode(parts[0]);
    String payload = decode(parts[1]);
    // The algorithm is pinned: never taken from the token (no "none", no HMAC with the public key).
    if (!"RS256".equals(string(header, "alg"))) throw new SecurityException("not signed with RS256");
    String kid = string(header, "kid");
    if (kid == null) throw new SecurityException("names no signing key");
    PublicKey key = keyFor(kid);
    Signature rsa = Signature.getInstance("SHA256withRSA");
    rsa.initVerify(key);
    rsa.update((parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII));
    if (!rsa.verify(Base64.getUrlDecoder().decode(parts[2]))) throw new SecurityException("signature does not verify");
    long now = Instant.now().getEpochSecond();
    Long exp = number(payload, "exp");
    Long nbf = number(payload, "nbf");
    if (exp == null || exp <= now) throw new SecurityException("expired");
    if (nbf != null && nbf > now + 30) throw new SecurityException("not valid yet");
    if (!issuer.equals(string(payload, "iss"))) throw new SecurityException("wrong issuer");
    if (audience != null && !audience.equals(string(payload, "aud"))) throw new SecurityException("wrong audience");
    return payload;
  }

  /** A key Latchkey publishes. An unknown kid (a key published since) fetches JWKS again, at most every 30 s. */
  private PublicKey keyFor(String kid) throws Exception {
    PublicKey key = keys.get(kid);
    if (key == null && Duration.between(fetchedAt, Instant.now()).getSeconds() >= 30) {
      fetchJwks();
      key = keys.get(kid);
    }
    if (key == null) throw new SecurityException("signed by a key Latchkey does not publish");
    return key;
  }

  private synchronized void fetchJwks() throws Exception {
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(jwksUrl).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) throw new IllegalStateException("JWKS answered " + response.statusCode());
    Map<String, PublicKey> fresh = new ConcurrentHashMap<>();
    // Each JWK is a flat JSON object; the JDK has no JSON parser, and these fields need none.
    Matcher jwk = Pattern.compile("\\{[^{}]*\\}").matcher(response.body());
    while (jwk.find()) {
      String k = jwk.group();
      if (!"RSA".equals(string(k, "kty")) || !"RS256".equals(string(k, "alg"))) continue;
      BigInteger n = new BigInteger(1, Base64.getUrlDecoder().decode(string(k, "n")));
      BigInteger e = new BigInteger(1, Base64.getUrlDecoder().decode(string(k, "e")));
      fresh.put(string(k, "kid"), KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(n, e)));
    }
    keys.clear();
    keys.putAll(fresh);
    fetchedAt = Instant.now();
  }

  private static String decode(String part) {
    return new String(Base64.getUrlDecoder().decode(part), StandardCharsets.UTF_8);
  }

  private static String string(String json, String name) {
    Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
    return m.find() ? m.group(1) : null;
  }

  private static Long number(String json, String name) {
    Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\"\\s*:\\s*(\\d+)").matcher(json);
    return m.find() ? Long.parseLong(m.group(1)) : null;
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: java LatchkeyVerifier.java <jwks-url> <issuer> [<audience>] < tokens");
      System.exit(2);
    }
    LatchkeyVerifier verifier = new LatchkeyVerifier(URI.create(args[0]), args[1], args.length > 2 ? args[2] : null);
    // One token a line; one answer a line.
    boolean allVerified = true;
    for (String token : new String(System.in.readAllBytes(), StandardCharsets.US_ASCII).split("\n")) {
      if (token.isBlank()) continue;
      try {
        System.out.println("verified " + verifier.verify(token));
      } catch (SecurityException refused) {
        System.out.println("refused: " + refused.getMessage());
        allVerified = false;
      }
    }
    System.exit(allVerified ? 0 : 1);
  }
}
