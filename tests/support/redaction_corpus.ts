/**
 * A corpus for redaction tests: true secrets in the shapes they appear in real output
 * (`secret` is the part that must never be shown), and look-alikes that must stay intact.
 */

/** One true secret: `text` as a program would print it, `secret` the part to hide. */
export interface SecretSample {
  text: string;
  secret: string;
}

const b64 = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0";
const b64b = "/DgvNshbvP6FpcQ3yA0Rq8yR8fYmWvxlVt6DfPZwZ8yQ+Zk4x5t2G8k4Qj3n6mU9uVVmY3Zc3wW7";

/** 47 true secrets. */
export const SECRETS: SecretSample[] = [
  {
    text: `-----BEGIN RSA PRIVATE KEY-----\n${b64}\n${b64b}\n-----END RSA PRIVATE KEY-----`,
    secret: b64,
  },
  {
    text:
      `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----`,
    secret: "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
  },
  {
    text:
      `-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----`,
    secret: "MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49",
  },
  {
    text:
      `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----`,
    secret: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
  },
  {
    text:
      `-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQIqKpTjhVQ3sYCAggA\n-----END ENCRYPTED PRIVATE KEY-----`,
    secret: "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQIqKpTjhVQ3sYCAggA",
  },
  {
    text:
      `  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZq\\n-----END PRIVATE KEY-----\\n",`,
    secret: "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZq",
  },
  { text: "aws_access_key_id = AKIAZ7QRSTUVWX2Y3ABC", secret: "AKIAZ7QRSTUVWX2Y3ABC" },
  { text: "export AWS_ACCESS_KEY_ID=ASIAQWERTYUIOPASDF12", secret: "ASIAQWERTYUIOPASDF12" },
  {
    text: "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
  },
  {
    text: "AWS_SECRET_ACCESS_KEY=Zx9vQ2mN8pL4kJ7hG3fD1sA6qW5eR0tY9uI8oP7a",
    secret: "Zx9vQ2mN8pL4kJ7hG3fD1sA6qW5eR0tY9uI8oP7a",
  },
  {
    text: "aws_session_token = FwoGZXIvYXdzEBYaDHqa0AP1TvL2kdZqVyKBAW",
    secret: "FwoGZXIvYXdzEBYaDHqa0AP1TvL2kdZqVyKBAW",
  },
  {
    text: "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc",
    secret: "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc",
  },
  {
    text:
      'curl -H "Authorization: Bearer ya29.a0AfH6SMBx3kL9pQ-rS_tUvWxYz" https://api.example.com',
    secret: "ya29.a0AfH6SMBx3kL9pQ-rS_tUvWxYz",
  },
  { text: "Authorization: Basic YWxpY2U6czNjcjN0UGFzcw==", secret: "YWxpY2U6czNjcjN0UGFzcw==" },
  { text: "Proxy-Authorization: Basic Ym9iOnByb3h5UGFzczE=", secret: "Ym9iOnByb3h5UGFzczE=" },
  { text: "fetching https://deploy:s3cretP4ss@git.example.com/app.git", secret: "s3cretP4ss" },
  { text: "ftp://admin:hunter2hunter2@files.example.org/pub", secret: "hunter2hunter2" },
  { text: "DATABASE_URL=postgres://app:pgPass123x@db:5432/app", secret: "pgPass123x" },
  { text: "mysql://root:myR00tPw!@127.0.0.1:3306/shop", secret: "myR00tPw!" },
  { text: "MONGO=mongodb+srv://u1:mongoPw99z@cluster0.example.net/test", secret: "mongoPw99z" },
  { text: "REDIS_URL=redis://:redisPw123q@cache:6379/0", secret: "redisPw123q" },
  { text: "amqp://guest:rabbitPw7k@mq:5672/vhost", secret: "rabbitPw7k" },
  {
    text: "jdbc:postgresql://db:5432/app?user=app&password=jdbcPw123r&ssl=true",
    secret: "jdbcPw123r",
  },
  {
    text: "Server=tcp:x.database.windows.net;Database=db;User ID=u;Password=azSqlPw9m;",
    secret: "azSqlPw9m",
  },
  {
    text:
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq==;EndpointSuffix=core.windows.net",
    secret: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq==",
  },
  {
    text:
      "token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    secret: "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
  },
  {
    text:
      "id_token=eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2lnbmF0dXJlLXBhcnQtb25l",
    secret: "eyJpc3MiOiJodHRwczovL2lkcCJ9",
  },
  { text: "password=hunter2x", secret: "hunter2x" },
  { text: 'DB_PASSWORD="quoted pass 42"', secret: "quoted pass 42" },
  { text: '{"user": "app", "password": "jsonPw123j"}', secret: "jsonPw123j" },
  { text: "  password: yamlPw123y", secret: "yamlPw123y" },
  { text: "secret=topsecretvalue9", secret: "topsecretvalue9" },
  { text: "client_secret: abcDEF123456ghi", secret: "abcDEF123456ghi" },
  { text: "api_key=0123456789abcdef0123", secret: "0123456789abcdef0123" },
  {
    text: "GITHUB_TOKEN=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    secret: "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
  },
  {
    text: "remote: github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    secret: "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH",
  },
  { text: "using glpat-x1y2z3a4b5c6d7e8f9g0 for CI", secret: "glpat-x1y2z3a4b5c6d7e8f9g0" },
  { text: "SLACK=xoxb-1234567890-abcdefghijKLM", secret: "xoxb-1234567890-abcdefghijKLM" },
  {
    text: "maps key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    secret: "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
  },
  { text: "stripe sk_live_51HxYzAbCdEfGhIjKlMnOp", secret: "sk_live_51HxYzAbCdEfGhIjKlMnOp" },
  {
    text: "OPENAI_KEY sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab",
    secret: "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab",
  },
  {
    text: "//registry.npmjs.org/:_authToken=npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    secret: "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
  },
  { text: "mysql -u root --password=cliPw42x shop", secret: "cliPw42x" },
  { text: "PGPASSWORD=pgEnvPw1q psql -h db", secret: "pgEnvPw1q" },
  { text: "export MYSQL_PWD=mysqlPwd9z", secret: "mysqlPwd9z" },
  { text: 'passphrase = "correct horse battery"', secret: "correct horse battery" },
  { text: '"auth_token": "abcdef123456zz"', secret: "abcdef123456zz" },
];

/** 45 look-alikes that must come through unchanged. */
export const LOOKALIKES: string[] = [
  "commit 3f786850e387550fdab836ed7e6dc881de23001b",
  "Merge: 89e6c98d92887913cadf06b2adb97f26cde4849b a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
  "HEAD is now at 1c2d3e4 fix the build",
  "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
  "parent da39a3ee5e6b4b0d3255bfef95601890afd80709",
  "id: 123e4567-e89b-12d3-a456-426614174000",
  "request_id=9b2c6f1e-3d4a-4e5b-8c7d-0f1e2d3c4b5a",
  "UUID=0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b /data ext4 defaults 0 2",
  "trace 7f3a9c2e-1b4d-4c6e-9f8a-2d5b7e1c3a90 done",
  "container 550e8400-e29b-41d4-a716-446655440000",
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty.txt",
  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  test.txt",
  "sha256sum: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
  "Digest: sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
  "image@sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1",
  "md5: d41d8cd98f00b204e9800998ecf8427e",
  "integrity sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==",
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
  "aGVsbG8gd29ybGQgdGhpcyBpcyBqdXN0IHNvbWUgYmFzZTY0IGVuY29kZWQgdGV4dCBub3QgYSBzZWNyZXQ=",
  "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)",
  "version 1.0.0-rc.1+build.5",
  "docker.io 20.10.24+dfsg1-1+b3",
  "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024",
  "node v20.19.2 npm 10.8.2",
  "PWD=/home/deploy/app",
  "OLDPWD=/tmp",
  "password_hash_algorithm=bcrypt",
  "max_tokens: 4096",
  "token_type=refresh",
  'WWW-Authenticate: Bearer realm="example"',
  "git@github.com:example/repo.git",
  "ssh://git@git.example.com:2222/team/repo.git",
  "https://example.com/search?q=secret+santa&page=2",
  "postgres://db.internal:5432/app",
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop",
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n-----END PUBLIC KEY-----",
  "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUFj3bXh6mOq3cQ0gQ2f3Lq0Xn9YcwCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----",
  "ED25519 key fingerprint is SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s.",
  "inet6 fe80::42:acff:fe11:2/64 scope link",
  "link/ether 02:42:ac:11:00:02 brd ff:ff:ff:ff:ff:ff",
  "[sudo] password for deploy:",
  "Enter passphrase (empty for no passphrase):",
  "secret_name: db-credentials",
  "kind: Secret",
];
