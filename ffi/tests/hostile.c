/*
 * libirm against hostile callers: NULLs everywhere, zero lengths, (NULL, n)
 * pairs, invalid UTF-8, freed, foreign and mistyped handles, double frees,
 * and tiny buffers for irm_last_error_message. Run under valgrind by
 * ffi/tests/hostile.rs: nothing may be read or written out of bounds, and
 * nothing may leak.
 *
 *   hostile [KAS_PUBLIC_KEY_TEXT]   (with a key, offline sealing is tried too)
 *
 * Prints "N passed, M failed" and exits 1 if any check failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char BAD_UTF8[] = {'a', (char)0xff, 'b', '\0'};

/* Whether s holds only complete UTF-8 sequences. */
static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t len = s[i] < 0x80 ? 1 : (s[i] >> 5) == 6 ? 2 : (s[i] >> 4) == 14 ? 3 : (s[i] >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) {
      return 0;
    }
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) {
        return 0;
      }
    }
    i += len;
  }
  return 1;
}

static void last_error_buffers(void) {
  size_t written = 12345;
  char buf[64];
  /* A fresh thread has no error: empty, OK. */
  EXPECT(irm_last_error_message(buf, sizeof buf, &written), IRM_OK);
  TRUE(written == 0 && buf[0] == '\0');

  /* An error whose text holds a multi-byte character ("é"). */
  irm_policy *policy = NULL;
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_policy_add_grant(policy, "caf\xc3\xa9 au lait", IRM_RIGHT_VIEW),
         IRM_STATUS_INVALID_ARGUMENT);
  irm_policy_free(policy);

  char full[1024];
  EXPECT(irm_last_error_message(full, sizeof full, &written), IRM_OK);
  size_t full_len = written;
  TRUE(full_len > 10 && strlen(full) == full_len);
  TRUE(strstr(full, "caf\xc3\xa9") != NULL);

  EXPECT(irm_last_error_message(NULL, 0, &written), IRM_STATUS_BUFFER_TOO_SMALL);
  TRUE(written == 0);
  EXPECT(irm_last_error_message(NULL, 10, &written), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_last_error_message(buf, sizeof buf, NULL), IRM_STATUS_NULL_ARGUMENT);

  /* Every size from 1 up: NUL-terminated, never past len, whole characters only. */
  for (size_t len = 1; len <= full_len + 2; len++) {
    char *tiny = malloc(len); /* exact size, so valgrind sees any overrun */
    irm_status st = irm_last_error_message(tiny, len, &written);
    TRUE(written < len && tiny[written] == '\0');
    TRUE(valid_utf8((unsigned char *)tiny, written));
    TRUE(memcmp(tiny, full, written) == 0);
    TRUE(st == (len > full_len ? IRM_OK : IRM_STATUS_BUFFER_TOO_SMALL));
    free(tiny);
  }
  /* Reading it does not clear it; the next call does. */
  EXPECT(irm_last_error_message(full, sizeof full, &written), IRM_OK);
  TRUE(written == full_len);
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_last_error_message(full, sizeof full, &written), IRM_OK);
  TRUE(written == 0);
  irm_policy_free(policy);
}

static void client_arguments(void) {
  irm_client *client = NULL;
  EXPECT(irm_client_open(NULL, "secret", NULL), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open(NULL, NULL, &client), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_client_open(NULL, BAD_UTF8, &client), IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_client_open(BAD_UTF8, "secret", &client), IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_client_open("", "secret", &client), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_client_open("/nonexistent/irm-hostile", "secret", &client),
         IRM_STATUS_NOT_ENROLLED);
  TRUE(client == NULL); /* out-pointers are written only on success */
  irm_client_free(NULL);

  irm_document *doc = NULL;
  EXPECT(irm_open(NULL, "x.irm", &doc), IRM_STATUS_NULL_ARGUMENT);
  TRUE(doc == NULL);
  uint32_t rights;
  uint64_t u64;
  size_t n;
  unsigned char buf[8];
  char *s1, *s2;
  EXPECT(irm_document_rights(NULL, &rights), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_document_lease_expires_in(NULL, &u64), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_document_metadata(NULL, &s1, &s2, &u64), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_read(NULL, buf, sizeof buf, &n), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_read_at(NULL, 0, buf, sizeof buf, &n), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_renew(NULL), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_report_event(NULL, IRM_ACTION_CLOSE), IRM_STATUS_NULL_ARGUMENT);
  irm_close(NULL);

  /* The text calls: a NULL document or a NULL required out-pointer is
   * refused, and nothing is written through the others. */
  irm_text_encoding encoding = (irm_text_encoding)0;
  uint8_t *text = NULL;
  size_t text_len = 7;
  int had_errors = 7;
  EXPECT(irm_document_text_encoding(NULL, &encoding), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_document_text_utf8(NULL, &text, &text_len, &had_errors), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_document_text_utf8(NULL, &text, &text_len, NULL), IRM_STATUS_NULL_ARGUMENT);
  TRUE(encoding == 0 && text == NULL && text_len == 7 && had_errors == 7);

  /* A pointer that is no document at all. */
  int not_a_document = 42;
  EXPECT(irm_document_rights((irm_document *)&not_a_document, &rights),
         IRM_STATUS_INVALID_HANDLE);
  EXPECT(irm_document_text_encoding((irm_document *)&not_a_document, &encoding),
         IRM_STATUS_INVALID_HANDLE);
  EXPECT(irm_document_text_utf8((irm_document *)&not_a_document, &text, &text_len, &had_errors),
         IRM_STATUS_INVALID_HANDLE);
  /* The out-pointers are checked before the handle. */
  EXPECT(irm_document_text_encoding((irm_document *)&not_a_document, NULL),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_document_text_utf8((irm_document *)&not_a_document, NULL, &text_len, NULL),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_document_text_utf8((irm_document *)&not_a_document, &text, NULL, NULL),
         IRM_STATUS_NULL_ARGUMENT);
  TRUE(encoding == 0 && text == NULL && text_len == 7 && had_errors == 7);
  irm_close((irm_document *)&not_a_document);
  TRUE(not_a_document == 42);
}

static void policy_arguments(void) {
  irm_policy *policy = NULL;
  EXPECT(irm_policy_new(NULL), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_policy_new(&policy), IRM_OK);
  EXPECT(irm_policy_add_grant(NULL, "alice", IRM_RIGHT_VIEW), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, NULL, IRM_RIGHT_VIEW), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, BAD_UTF8, IRM_RIGHT_VIEW), IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_policy_add_grant(policy, "", IRM_RIGHT_VIEW), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, ",,", IRM_RIGHT_VIEW), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, "@", IRM_RIGHT_VIEW), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, "alice", 0), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, "alice", 0x80000000u), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, "alice,@support", IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM),
         IRM_OK);
  EXPECT(irm_policy_set_not_after(NULL, 4000000000u), IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_policy_set_not_after(policy, 1), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_set_not_after(policy, 4000000000u), IRM_OK);
  EXPECT(irm_policy_set_classification(policy, BAD_UTF8), IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_policy_set_classification(policy, NULL), IRM_OK);
  EXPECT(irm_policy_set_classification(policy, "confidential"), IRM_OK);
  EXPECT(irm_policy_set_max_lease(policy, 0), IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_set_max_lease(policy, 60), IRM_OK);

  /* A policy is not a document: the mistyped handle is refused, the policy survives. */
  irm_close((irm_document *)policy);
  EXPECT(irm_document_rights((irm_document *)policy, NULL), IRM_STATUS_NULL_ARGUMENT);
  uint32_t rights;
  EXPECT(irm_document_rights((irm_document *)policy, &rights), IRM_STATUS_INVALID_HANDLE);
  irm_text_encoding encoding;
  EXPECT(irm_document_text_encoding((irm_document *)policy, &encoding),
         IRM_STATUS_INVALID_HANDLE);
  EXPECT(irm_policy_set_classification(policy, "still alive"), IRM_OK);

  irm_policy_free(policy);
  /* Double free and use after free: refused, not undefined behaviour. */
  irm_policy_free(policy);
  EXPECT(irm_policy_set_classification(policy, "freed"), IRM_STATUS_INVALID_HANDLE);
  irm_policy_free(NULL);
}

static void offline_sealing(const char *key) {
  irm_policy *policy = NULL;
  EXPECT(irm_policy_new(&policy), IRM_OK);
  uint8_t *out = NULL;
  size_t out_len = 0;
  const uint8_t data[] = "customer,phone\nYamada Taro,03-1234-5678\n";

  /* No grant yet: the policy is not valid. */
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, data, sizeof data - 1,
                                 NULL, NULL, &out, &out_len),
         IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_policy_add_grant(policy, "@support", IRM_RIGHT_VIEW), IRM_OK);

  EXPECT(irm_seal_buffer_offline(NULL, "https://kas.example", policy, data, 1, NULL, NULL,
                                 &out, &out_len),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_seal_buffer_offline(key, NULL, policy, data, 1, NULL, NULL, &out, &out_len),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_seal_buffer_offline("not a key", "https://kas.example", policy, data, 1, NULL,
                                 NULL, &out, &out_len),
         IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_seal_buffer_offline(BAD_UTF8, "https://kas.example", policy, data, 1, NULL, NULL,
                                 &out, &out_len),
         IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", NULL, data, 1, NULL, NULL, &out,
                                 &out_len),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, NULL, 5, NULL, NULL, &out,
                                 &out_len),
         IRM_STATUS_INVALID_ARGUMENT);
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, data, 1, BAD_UTF8, NULL,
                                 &out, &out_len),
         IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, data, 1, NULL, NULL, NULL,
                                 &out_len),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, data, 1, NULL, NULL, &out,
                                 NULL),
         IRM_STATUS_NULL_ARGUMENT);
  TRUE(out == NULL && out_len == 0);
  EXPECT(irm_seal_buffer(NULL, policy, data, 1, NULL, NULL, &out, &out_len),
         IRM_STATUS_NULL_ARGUMENT);

  /* (NULL, 0) is an empty plaintext, which seals. */
  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, NULL, 0, NULL, NULL, &out,
                                 &out_len),
         IRM_OK);
  TRUE(out != NULL && out_len > 16);
  irm_buffer_free(out, out_len + 1); /* wrong length: refused, still owned */
  irm_buffer_free(out, out_len);
  irm_buffer_free(out, out_len); /* double free: refused */
  irm_buffer_free(NULL, 0);
  irm_buffer_free(NULL, 99);

  EXPECT(irm_seal_buffer_offline(key, "https://kas.example", policy, data, sizeof data - 1,
                                 "calls.csv", "text/csv", &out, &out_len),
         IRM_OK);
  TRUE(out_len > sizeof data);
  TRUE(memmem(out, out_len, "Yamada", 6) == NULL); /* no plaintext in the output */
  irm_buffer_free(out, out_len);

  /* Files: missing input, bad paths, then a real one. */
  char *file_id = NULL;
  EXPECT(irm_seal_file_offline(key, "https://kas.example", policy, "/nonexistent/in.csv",
                               "/tmp/irm-hostile-out.irm", &file_id),
         IRM_STATUS_IO);
  EXPECT(irm_seal_file_offline(key, "https://kas.example", policy, NULL, "/tmp/x.irm",
                               &file_id),
         IRM_STATUS_NULL_ARGUMENT);
  EXPECT(irm_seal_file_offline(key, "https://kas.example", policy, "/tmp/x.csv", BAD_UTF8,
                               &file_id),
         IRM_STATUS_INVALID_UTF8);
  EXPECT(irm_seal_file(NULL, policy, "/tmp/x.csv", "/tmp/x.irm", &file_id),
         IRM_STATUS_NULL_ARGUMENT);
  TRUE(file_id == NULL);
  char in_path[] = "/tmp/irm-hostile-XXXXXX";
  int fd = mkstemp(in_path);
  TRUE(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs((const char *)data, f);
  fclose(f);
  char out_path[64];
  snprintf(out_path, sizeof out_path, "%s.irm", in_path);
  EXPECT(irm_seal_file_offline(key, "https://kas.example", policy, in_path, out_path,
                               &file_id),
         IRM_OK);
  TRUE(file_id != NULL && strlen(file_id) == 32);
  irm_string_free(file_id);
  irm_string_free(file_id); /* double free: refused */
  char foreign[] = "not from libirm";
  irm_string_free(foreign); /* foreign: refused */
  TRUE(strcmp(foreign, "not from libirm") == 0);
  EXPECT(irm_seal_file_offline(key, "https://kas.example", policy, in_path, out_path, NULL),
         IRM_OK);

  /* Opening needs a client; a sealed file that is not one gives FORMAT via a client only. */
  remove(in_path);
  remove(out_path);
  irm_policy_free(policy);
}

int main(int argc, char **argv) {
  last_error_buffers();
  client_arguments();
  policy_arguments();
  if (argc > 1) {
    offline_sealing(argv[1]);
  }
  return check_report();
}
