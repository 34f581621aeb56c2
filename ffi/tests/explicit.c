/*
 * irm_client_open_explicit against a live key server (run by
 * tests/tests/ffi.rs, also under valgrind): credentials given by path with
 * no configuration directory, a server URL the credential was not enrolled
 * with, a CA that is not the server's, and bad arguments.
 *
 *   explicit SERVER_URL CA_PEM DEVICE_JSON DEVICE_KEY USER OTHER_CA SEALED_PATH
 *   (IRM_PASSPHRASE set; IRM_CONFIG_DIR unset, so nothing else is found)
 *
 * Prints "N passed, M failed" and exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Whether this thread's last error message contains `part`. */
static int last_error_has(const char *part) {
  char detail[1024];
  size_t n = 0;
  irm_last_error_message(detail, sizeof detail, &n);
  if (strstr(detail, part) != NULL) {
    return 1;
  }
  fprintf(stderr, "last error lacks \"%s\": %s\n", part, detail);
  return 0;
}

static const char DATA[] =
    "customer,phone\nYamada Taro,03-1234-5678\nSuzuki Hanako,06-8765-4321\n";

int main(int argc, char **argv) {
  const char *pass = getenv("IRM_PASSPHRASE");
  if (argc != 8 || pass == NULL) {
    fprintf(stderr, "usage: explicit SERVER_URL CA_PEM DEVICE_JSON DEVICE_KEY USER OTHER_CA "
                    "SEALED_PATH (IRM_PASSPHRASE set)\n");
    return 2;
  }
  const char *url = argv[1], *ca = argv[2], *json = argv[3], *key = argv[4];
  const char *user = argv[5], *other_ca = argv[6], *sealed_path = argv[7];

  /* The whole flow on credentials given by path: seal online, open, read. */
  irm_client *client = NULL;
  EXPECT(irm_client_open_explicit(url, ca, json, key, pass, &client), IRM_OK);
  irm_policy *policy = NULL;
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_policy_add_grant(policy, user, IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM), IRM_OK);
  uint8_t *sealed = NULL;
  size_t sealed_len = 0;
  EXPECT(irm_seal_buffer(client, policy, (const uint8_t *)DATA, sizeof DATA - 1, "calls.csv",
                         "text/csv", &sealed, &sealed_len),
         IRM_OK);
  FILE *f = fopen(sealed_path, "wb");
  TRUE(f != NULL && sealed != NULL && fwrite(sealed, 1, sealed_len, f) == sealed_len);
  if (f != NULL) {
    fclose(f);
  }
  irm_buffer_free(sealed, sealed_len);
  irm_document *doc = NULL;
  char buf[64];
  size_t n = 0;
  EXPECT(irm_open(client, sealed_path, &doc), IRM_OK);
  EXPECT(irm_read_at(doc, 15, (uint8_t *)buf, 11, &n), IRM_OK);
  TRUE(n == 11 && memcmp(buf, "Yamada Taro", 11) == 0);
  memset(buf, 0, sizeof buf);
  irm_close(doc);
  irm_client_free(client);

  /* A server URL the credential was not enrolled with: refused up front,
   * naming both servers, and nothing is written to *out. */
  const char *elsewhere = "https://127.0.0.1:1";
  client = NULL;
  EXPECT(irm_client_open_explicit(elsewhere, ca, json, key, pass, &client),
         IRM_STATUS_SERVER_MISMATCH);
  TRUE(client == NULL);
  TRUE(last_error_has(elsewhere));
  TRUE(last_error_has(url));
  TRUE(last_error_has(json));
  EXPECT(irm_client_open_explicit("http://127.0.0.1:1", ca, json, key, pass, &client),
         IRM_STATUS_INVALID_ARGUMENT);
  TRUE(last_error_has("https"));

  /* A CA that is not the server's: unlocking sends nothing, so it succeeds;
   * the first call that reaches the server fails its TLS handshake. */
  EXPECT(irm_client_open_explicit(url, other_ca, json, key, pass, &client), IRM_OK);
  doc = NULL;
  EXPECT(irm_open(client, sealed_path, &doc), IRM_STATUS_TLS);
  TRUE(doc == NULL);
  TRUE(last_error_has("certificate"));
  sealed = NULL;
  EXPECT(irm_seal_buffer(client, policy, (const uint8_t *)DATA, sizeof DATA - 1, NULL, NULL,
                         &sealed, &sealed_len),
         IRM_STATUS_TLS);
  TRUE(sealed == NULL);
  irm_client_free(client);
  irm_policy_free(policy);

  /* Bad arguments, each refused with its own status before any key work. */
  client = NULL;
  EXPECT(irm_client_open_explicit(NULL, ca, json, key, pass, &client), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, NULL, json, key, pass, &client), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, ca, NULL, key, pass, &client), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, ca, json, NULL, pass, &client), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, ca, json, key, NULL, &client), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, ca, json, key, pass, NULL), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, "", json, key, pass, &client),
         IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_client_open_explicit(url, "\xff.pem", json, key, pass, &client),
         IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_client_open_explicit(url, "/nonexistent/ca.pem", json, key, pass, &client),
         IRM_STATUS_IO);
  TRUE(last_error_has("/nonexistent/ca.pem"));
  /* device.json is not a certificate. */
  EXPECT(irm_client_open_explicit(url, json, json, key, pass, &client),
         IRM_STATUS_INVALID_ARGUMENT);
  /* The two credential files swapped. */
  EXPECT(irm_client_open_explicit(url, ca, key, json, pass, &client), IRM_STATUS_BAD_CONFIG);
  EXPECT(irm_client_open_explicit(url, ca, json, key, "not the passphrase", &client),
         IRM_STATUS_WRONG_PASSPHRASE);
  TRUE(client == NULL);

  return check_report();
}
