/*
 * libirm's document calls against a live key server (run by
 * tests/tests/ffi.rs as an enrolled person, also under valgrind): online
 * buffer sealing with a one-second lease, metadata, irm_read / irm_read_at,
 * usage events, a lease that runs out (no plaintext after it), renewal, a
 * document used and closed again after irm_close, and one client shared by
 * several threads, each with its own last error.
 *
 *   lease USER SEALED_PATH     (IRM_PASSPHRASE and IRM_CONFIG_DIR set)
 *
 * Prints "N passed, M failed" and exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include "check.h"

static const char *sealed_path;
static irm_client *shared_client;

/* One of several threads sharing a client: open, read, close; and its own
 * last error, which the other threads' failures do not touch. */
static void *reader(void *arg) {
  long id = (long)arg;
  long ok = 1;
  for (int round = 0; round < 3; round++) {
    irm_document *doc = NULL;
    char buf[16];
    size_t n = 0;
    char wrong[32];
    snprintf(wrong, sizeof wrong, "/nonexistent/%ld.irm", id);
    ok &= irm_open(shared_client, wrong, &doc) == IRM_STATUS_IO;
    /* Other threads fail and succeed meanwhile; this thread's message stays. */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    char detail[256];
    ok &= irm_last_error_message(detail, sizeof detail, &n) == IRM_OK &&
          strstr(detail, wrong) != NULL;
    ok &= irm_open(shared_client, sealed_path, &doc) == IRM_OK;
    ok &= irm_read_at(doc, 15, (uint8_t *)buf, 11, &n) == IRM_OK && n == 11 &&
          memcmp(buf, "Yamada Taro", 11) == 0;
    irm_close(doc);
  }
  return (void *)ok;
}

static const char DATA[] =
    "customer,phone\nYamada Taro,03-1234-5678\nSuzuki Hanako,06-8765-4321\n";

int main(int argc, char **argv) {
  if (argc != 3 || getenv("IRM_PASSPHRASE") == NULL) {
    fprintf(stderr, "usage: lease USER SEALED_PATH (IRM_PASSPHRASE set)\n");
    return 2;
  }
  irm_client *client = NULL;
  EXPECT(irm_client_open(NULL, "not the passphrase", &client), IRM_STATUS_WRONG_PASSPHRASE);
  EXPECT(irm_client_open(NULL, getenv("IRM_PASSPHRASE"), &client), IRM_OK);

  /* Online buffer sealing, for this user, with a one-second lease. */
  irm_policy *policy = NULL;
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_policy_add_grant(policy, argv[1], IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM), IRM_OK);
  EXPECT(irm_policy_set_max_lease(policy, 1), IRM_OK);
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

  irm_document *doc = NULL;
  EXPECT(irm_open(client, argv[2], &doc), IRM_OK);
  /* The document shares the session: freeing the client first is fine. */
  irm_client_free(client);

  uint32_t rights = 0;
  EXPECT(irm_document_rights(doc, &rights), IRM_OK);
  TRUE(rights == (IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM));
  char *name = NULL, *media = NULL;
  uint64_t len = 0, lease = 99;
  EXPECT(irm_document_metadata(doc, &name, &media, &len), IRM_OK);
  TRUE(name != NULL && strcmp(name, "calls.csv") == 0);
  TRUE(media != NULL && strcmp(media, "text/csv") == 0);
  TRUE(len == sizeof DATA - 1);
  irm_string_free(name);
  irm_string_free(media);
  EXPECT(irm_document_lease_expires_in(doc, &lease), IRM_OK);
  TRUE(lease <= 1);

  /* Reads: whole, at an offset, past the end, zero-length. */
  char buf[256];
  size_t n = 0, total = 0;
  do {
    EXPECT(irm_read(doc, (uint8_t *)buf + total, 7, &n), IRM_OK);
    total += n;
  } while (n > 0 && total + 7 < sizeof buf);
  TRUE(total == sizeof DATA - 1 && memcmp(buf, DATA, total) == 0);
  EXPECT(irm_read_at(doc, 15, (uint8_t *)buf, 11, &n), IRM_OK);
  TRUE(n == 11 && memcmp(buf, "Yamada Taro", 11) == 0);
  EXPECT(irm_read_at(doc, 1000, (uint8_t *)buf, sizeof buf, &n), IRM_OK);
  TRUE(n == 0);
  EXPECT(irm_read_at(doc, 0, NULL, 0, &n), IRM_OK);
  TRUE(n == 0);
  EXPECT(irm_read_at(doc, 0, NULL, 4, &n), IRM_STATUS_INVALID_ARGUMENT);

  /* Usage events: a right the grant lacks is refused (and audited). */
  EXPECT(irm_report_event(doc, IRM_ACTION_PRINT), IRM_STATUS_DENIED_RIGHT_NOT_GRANTED);
  EXPECT(irm_report_rows(doc, IRM_ACTION_PRINT, 3), IRM_STATUS_DENIED_RIGHT_NOT_GRANTED);
  EXPECT(irm_report_rows(doc, 99, 3), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_report_event(doc, 99), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_report_event(doc, IRM_ACTION_CLOSE), IRM_OK);

  /* The lease runs out: no plaintext until it is renewed. */
  irm_status st = IRM_OK;
  for (int i = 0; i < 40 && st == IRM_OK; i++) {
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    st = irm_read_at(doc, 0, (uint8_t *)buf, sizeof buf, &n);
  }
  TRUE(st == IRM_STATUS_LEASE_EXPIRED);
  EXPECT(irm_read(doc, (uint8_t *)buf, sizeof buf, &n), IRM_STATUS_LEASE_EXPIRED);
  EXPECT(irm_document_lease_expires_in(doc, &lease), IRM_OK);
  TRUE(lease == 0);
  EXPECT(irm_renew(doc), IRM_OK);
  EXPECT(irm_read_at(doc, 15, (uint8_t *)buf, 11, &n), IRM_OK);
  TRUE(n == 11 && memcmp(buf, "Yamada Taro", 11) == 0);
  memset(buf, 0, sizeof buf);
  irm_close(doc);

  /* A real document used after irm_close: the handle registry refuses every
   * call with IRM_STATUS_INVALID_HANDLE before the freed memory is touched
   * (valgrind would report an invalid read otherwise), no plaintext comes
   * out, nothing is written to the out-pointers, and closing it again
   * frees nothing twice. */
  n = 77;
  rights = 77;
  lease = 77;
  name = NULL;
  EXPECT(irm_read(doc, (uint8_t *)buf, sizeof buf, &n), IRM_STATUS_INVALID_HANDLE);
  EXPECT(irm_read_at(doc, 15, (uint8_t *)buf, 11, &n), IRM_STATUS_INVALID_HANDLE);
  TRUE(n == 77 && buf[0] == 0);
  EXPECT(irm_document_rights(doc, &rights), IRM_STATUS_INVALID_HANDLE);
  TRUE(rights == 77);
  EXPECT(irm_document_lease_expires_in(doc, &lease), IRM_STATUS_INVALID_HANDLE);
  TRUE(lease == 77);
  EXPECT(irm_document_metadata(doc, &name, &media, &len), IRM_STATUS_INVALID_HANDLE);
  TRUE(name == NULL);
  EXPECT(irm_renew(doc), IRM_STATUS_INVALID_HANDLE);
  EXPECT(irm_report_event(doc, IRM_ACTION_CLOSE), IRM_STATUS_INVALID_HANDLE);
  {
    char detail[256];
    size_t len_detail = 0;
    EXPECT(irm_last_error_message(detail, sizeof detail, &len_detail), IRM_OK);
    TRUE(strstr(detail, "not a live handle") != NULL);
    irm_close(doc); /* closed twice: refused, and said so */
    EXPECT(irm_last_error_message(detail, sizeof detail, &len_detail), IRM_OK);
    TRUE(strstr(detail, "not freed again") != NULL);
  }

  /* One client, several threads at once, on a file with the default lease:
   * with the one-second lease above, a loaded machine could end a lease
   * between a thread's irm_open and its read. */
  static char threads_path[4096];
  snprintf(threads_path, sizeof threads_path, "%s.threads", argv[2]);
  sealed_path = threads_path;
  EXPECT(irm_client_open(NULL, getenv("IRM_PASSPHRASE"), &shared_client), IRM_OK);
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_policy_add_grant(policy, argv[1], IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM), IRM_OK);
  EXPECT(irm_seal_buffer(shared_client, policy, (const uint8_t *)DATA, sizeof DATA - 1,
                         "calls.csv", "text/csv", &sealed, &sealed_len),
         IRM_OK);
  irm_policy_free(policy);
  f = fopen(threads_path, "wb");
  TRUE(f != NULL && fwrite(sealed, 1, sealed_len, f) == sealed_len);
  if (f != NULL) {
    fclose(f);
  }
  irm_buffer_free(sealed, sealed_len);
  pthread_t threads[4];
  for (long i = 0; i < 4; i++) {
    TRUE(pthread_create(&threads[i], NULL, reader, (void *)i) == 0);
  }
  for (int i = 0; i < 4; i++) {
    void *ok = NULL;
    pthread_join(threads[i], &ok);
    TRUE(ok == (void *)1);
  }
  irm_client_free(shared_client);

  return check_report();
}
