/*
 * irm_document_notices against a live key server (run by
 * tests/tests/ffi.rs, also under valgrind): the person's first grant after
 * another device was enrolled for their account carries a notice, which
 * libirm hands over once; a second document, and a second call, have none.
 *
 *   notices USER SEALED_PATH NEW_DEVICE_ID   (IRM_PASSPHRASE and IRM_CONFIG_DIR set)
 *
 * Prints "N passed, M failed" and exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char DATA[] = "customer,phone\nYamada Taro,03-1234-5678\n";

int main(int argc, char **argv) {
  if (argc != 4 || getenv("IRM_PASSPHRASE") == NULL) {
    fprintf(stderr, "usage: notices USER SEALED_PATH NEW_DEVICE_ID (IRM_PASSPHRASE set)\n");
    return 2;
  }
  irm_client *client = NULL;
  EXPECT(irm_client_open(NULL, getenv("IRM_PASSPHRASE"), &client), IRM_OK);
  irm_policy *policy = NULL;
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_policy_add_grant(policy, argv[1], IRM_RIGHT_VIEW), IRM_OK);
  uint8_t *sealed = NULL;
  size_t sealed_len = 0;
  EXPECT(irm_seal_buffer(client, policy, (const uint8_t *)DATA, sizeof DATA - 1, "calls.csv",
                         "text/csv", &sealed, &sealed_len),
         IRM_OK);
  irm_policy_free(policy);
  FILE *f = fopen(argv[2], "wb");
  TRUE(f != NULL && fwrite(sealed, 1, sealed_len, f) == sealed_len);
  fclose(f);
  irm_buffer_free(sealed, sealed_len);

  /* The first grant carries the notice, naming the new device. */
  irm_document *doc = NULL;
  EXPECT(irm_open(client, argv[2], &doc), IRM_OK);
  char *notices = NULL;
  EXPECT(irm_document_notices(doc, &notices), IRM_OK);
  TRUE(notices != NULL && strstr(notices, "a new device") != NULL &&
       strstr(notices, argv[3]) != NULL && strstr(notices, "approved_by=") != NULL);
  irm_string_free(notices);
  /* Taken once. */
  notices = (char *)1;
  EXPECT(irm_document_notices(doc, &notices), IRM_OK);
  TRUE(notices == NULL);
  EXPECT(irm_document_notices(doc, NULL), IRM_STATUS_NULL_ARGUMENT);
  irm_close(doc);

  /* The server said it once: the next grant has nothing to tell. */
  EXPECT(irm_open(client, argv[2], &doc), IRM_OK);
  notices = (char *)1;
  EXPECT(irm_document_notices(doc, &notices), IRM_OK);
  TRUE(notices == NULL);
  irm_close(doc);
  irm_client_free(client);
  return check_report();
}
