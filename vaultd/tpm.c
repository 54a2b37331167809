/* SPDX-License-Identifier: MIT */
/*
 * vaultd's TPM layer over ESAPI. The only file in the project that includes tss2 headers.
 *
 * Rules kept by every function below:
 *  - every handle it loads (transient object or session) is flushed before it returns, on success
 *    and failure alike: without a resource manager (swtpm, some embedded TPMs) a leaked handle
 *    stays in one of the TPM's few slots (swtpm has 3 objects, 3 sessions) until reset. The one
 *    exception is the bound counter's salted session (tpm_counter_bind()), which stays loaded
 *    until the next bind or tpm_close(): it is what lets an authentication cost one TPM command;
 *  - loaded handles are also recorded in the context, so if a flush fails (the transport broke)
 *    tpm_close() tries again;
 *  - secrets (KEK, counter auth) are wiped from our buffers and from tss2's output buffers before
 *    they are freed;
 *  - failures return -errno and leave one sentence in t->err; nothing is logged here.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpm-internal.h"
#include "tpm.h"

/*
 * OpenSSL's legacy name table (EVP_get_*byname) stays empty. tss2-esys 3.x fetches every
 * hash, HMAC and random draw of a session through a fresh OSSL_LIB_CTX, and each new context
 * copies that table into its name map (OBJ_NAME_do_all): a third of vaultd's CPU per
 * authentication, in the one TPM command (docs/benchmarks.md, Device side). Fetches find the
 * providers' own names; nothing in vaultd or tss2 looks an algorithm up by legacy name.
 */
int tpm_openssl_init(void) {
        return OPENSSL_init_crypto(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS, NULL) == 1 ?
                0 : -EIO;
}

/* Length of the error message kept per context. */
#define TPM_ERR_MAX 256
/* Handles one operation holds at once: parent, sealed object, two sessions; plus the bound
 * counter's session, which stays loaded between calls; plus slack. */
#define TPM_TRACK_MAX 8
/* Random NV indices tried by tpm_counter_define() before giving up. */
#define TPM_COUNTER_TRIES 64
#define TPM_PCR_MASK_VALID ((uint32_t) ((1u << TPM_PCR_COUNT) - 1))
#define TPM_COUNTER_SIZE 8

struct tpm_ctx {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        uint64_t ncmd;
        ESYS_TR bound_nv;               /* tpm_counter_bind(): host-side handle, nothing loaded */
        ESYS_TR bound_session;          /* its salted HMAC session: loaded (and in loaded[]) */
        TPM2B_AUTH bound_auth;          /* its auth value, to restore on bound_nv (see is_bound()) */
        uint32_t bound_index;
        struct tpm_name pinned;         /* parent name vouched for by seal/unseal; len 0 = none */
        ESYS_TR loaded[TPM_TRACK_MAX];
        char err[TPM_ERR_MAX];
};

/* tpm_open() has no context to hold its failure, so it lives here (per thread). */
static _Thread_local char open_err[TPM_ERR_MAX];

/* The TCG ECC P-256 storage key template ("SRK", TCG TPM v2.0 Provisioning Guidance). Its unique
 * field is empty, as tpm2-tools and systemd create it, so a transient primary made from it is the
 * same key as a persistent SRK provisioned by them. */
#define SRK_ATTRS (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM | \
                   TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
                   TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA)

static const TPM2B_PUBLIC srk_template = {
        .publicArea = {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = SRK_ATTRS,
                .parameters.eccDetail = {
                        .symmetric = {
                                .algorithm = TPM2_ALG_AES,
                                .keyBits.aes = 128,
                                .mode.aes = TPM2_ALG_CFB,
                        },
                        .scheme.scheme = TPM2_ALG_NULL,
                        .curveID = TPM2_ECC_NIST_P256,
                        .kdf.scheme = TPM2_ALG_NULL,
                },
        },
};

/* Parameter encryption for every session we start. */
static const TPMT_SYM_DEF session_sym = {
        .algorithm = TPM2_ALG_AES,
        .keyBits.aes = 128,
        .mode.aes = TPM2_ALG_CFB,
};

/* The anti-rollback counter's NV attributes.
 *
 * TPM2_NT_COUNTER: the TPM itself guarantees the value only ever goes up, and a counter defined
 * anew (even after undefine) starts at least at the highest value any counter ever had, so
 * neither a reset nor a redefinition rolls it back.
 * Not ORDERLY: an orderly counter is written to NV only at orderly shutdown; after a power loss
 * the TPM jumps it forward by an unknown amount. vaultd would then see a counter ahead of its
 * vault file and fail closed. A non-orderly increment is durable when the command returns, which
 * is the property the vault's commit protocol relies on; vault generations are rare, so NV wear
 * does not matter.
 * AUTHREAD|AUTHWRITE with a 32-byte random auth value only vaultd knows: nobody else may advance
 * it (which would be a denial of service), and it is used over HMAC sessions, never as a
 * cleartext password, so it never crosses the TCTI.
 * NO_DA: a wrong auth (a corrupt vault file, a bug) must not count toward the TPM-wide
 * dictionary-attack lockout that would lock out every DA-protected key on the machine. A 32-byte
 * random value needs no DA protection against guessing. */
#define NV_COUNTER_ATTRS (TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA | \
                          ((TPMA_NV) TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT))

/* The sealed KEK's attributes.
 *
 * fixedTPM|fixedParent: the object can never be duplicated out of this TPM.
 * noDA: the object's auth value is empty or 32 random-looking bytes derived from vaultd's key
 * file (tpm_seal_auth()): guessing it is hopeless, so DA protection buys nothing, and a DA
 * lockout caused by anything else on the machine must not stop vaultd from unsealing.
 * userWithAuth is replaced by adminWithPolicy when a PCR policy is given: then the user role can
 * only be satisfied by the policy (which includes PolicyAuthValue when there is an auth value),
 * not by the auth value alone. */
#define SEALED_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA)

struct tpm_parent {
        ESYS_TR tr;
        bool transient;                 /* flush it (created) or only close its ESYS_TR (persistent) */
        struct tpm_name name;
};

#define TPM_PARENT_NULL { .tr = ESYS_TR_NONE }

static void wipe_free(void *p, size_t n) {
        if (!p)
                return;
        explicit_bzero(p, n);
        Esys_Free(p);
}
#define WIPE_FREE(p) do { wipe_free((p), sizeof(*(p))); (p) = NULL; } while (0)

/* Strip the layer and, for format-one codes, the handle/session/parameter number. */
static TSS2_RC rc_base(TSS2_RC rc) {
        TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;

        if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)
                return rc;
        if (rc & TPM2_RC_FMT1)
                return rc & (TPM2_RC_FMT1 | 0x3f);
        return rc & 0xfff;
}

static bool rc_from_tpm(TSS2_RC rc) {
        TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
        return layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER;
}

static int rc_errno(TSS2_RC rc) {
        if (!rc_from_tpm(rc))
                return (rc & TSS2_RC_LAYER_MASK) == TSS2_MU_RC_LAYER ? -EBADMSG :
                       (rc & 0xffff) == TSS2_BASE_RC_MEMORY ? -ENOMEM : -EIO;

        switch (rc_base(rc)) {
        case TPM2_RC_LOCKOUT:
                return -EBUSY;
        case TPM2_RC_POLICY_FAIL:
        case TPM2_RC_PCR_CHANGED:
                return -EPERM;
        case TPM2_RC_INTEGRITY:
        case TPM2_RC_SENSITIVE:
                return -EXDEV;
        case TPM2_RC_AUTH_FAIL:
        case TPM2_RC_BAD_AUTH:
                return -EACCES;
        case TPM2_RC_HANDLE:
                return -ENOENT;
        case TPM2_RC_NV_DEFINED:
                return -EEXIST;
        case TPM2_RC_NV_UNINITIALIZED:
                return -ENODATA;
        case TPM2_RC_NV_SPACE:
        case TPM2_RC_OBJECT_MEMORY:
        case TPM2_RC_SESSION_MEMORY:
                return -ENOSPC;
        case TPM2_RC_RETRY:
        case TPM2_RC_YIELDED:
        case TPM2_RC_TESTING:
                return -EAGAIN;
        default:
                return -EIO;
        }
}

int tpm_fail(struct tpm_ctx *t, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(t->err, sizeof(t->err), fmt, ap);
        va_end(ap);
        return r;
}

/* Map a tss2 failure to -errno and record "<what>: <reason> (<tss2 decoding>)". */
int tpm_fail_rc(struct tpm_ctx *t, const char *what, TSS2_RC rc) {
        int r = rc_errno(rc);
        const char *why;

        switch (r) {
        case -EBUSY:
                why = "TPM is in dictionary-attack lockout: ";
                break;
        case -EPERM:
                why = "PCR values do not match the sealing policy: ";
                break;
        case -EXDEV:
                why = "rejected by the TPM's integrity check (tampered, or sealed by another TPM): ";
                break;
        case -EACCES:
                why = "wrong authorization value: ";
                break;
        default:
                why = "";
        }
        return tpm_fail(t, r, "%s: %s%s", what, why, Tss2_RC_Decode(rc));
}

static void track(struct tpm_ctx *t, ESYS_TR tr) {
        for (size_t i = 0; i < TPM_TRACK_MAX; i++)
                if (t->loaded[i] == ESYS_TR_NONE) {
                        t->loaded[i] = tr;
                        return;
                }
        /* Unreachable: no operation holds more than 4 handles, and each releases them. If it
         * ever happens the handle is still flushed by its owner; only the retry in close is lost. */
}

static void untrack(struct tpm_ctx *t, ESYS_TR tr) {
        for (size_t i = 0; i < TPM_TRACK_MAX; i++)
                if (t->loaded[i] == tr) {
                        t->loaded[i] = ESYS_TR_NONE;
                        return;
                }
}

static void flush(struct tpm_ctx *t, ESYS_TR *tr) {
        if (*tr == ESYS_TR_NONE)
                return;
        t->ncmd++;
        if (Esys_FlushContext(t->esys, *tr) == TSS2_RC_SUCCESS)
                untrack(t, *tr);
        *tr = ESYS_TR_NONE;
}

/* Release an ESYS_TR of a persistent object or NV index: no TPM command, no slot held. ESYS keeps
 * the auth value we set in its own metadata; overwrite it rather than rely on ESYS to wipe it. */
static void tr_close(struct tpm_ctx *t, ESYS_TR *tr) {
        static const TPM2B_AUTH empty = { 0 };

        if (*tr == ESYS_TR_NONE)
                return;
        (void) Esys_TR_SetAuth(t->esys, *tr, &empty);
        (void) Esys_TR_Close(t->esys, tr);
        *tr = ESYS_TR_NONE;
}

static bool tracked(struct tpm_ctx *t, TPM2_HANDLE h) {
        for (size_t i = 0; i < TPM_TRACK_MAX; i++) {
                TPM2_HANDLE mine;

                if (t->loaded[i] != ESYS_TR_NONE &&
                    Esys_TR_GetTpmHandle(t->esys, t->loaded[i], &mine) == TSS2_RC_SUCCESS && mine == h)
                        return true;
        }
        return false;
}

/*
 * Free the session slots of sessions nobody can use any more; returns how many were flushed.
 *
 * Called only when the TPM has no room for a new session. Without a resource manager (swtpm, a
 * bare /dev/tpm0) a process that dies without tpm_close() leaves its sessions loaded until the
 * next TPM reset; a vaultd that crashed leaves its bound counter session. The TPM has three
 * session slots, so three such crashes would lock vaultd out of its own TPM. Such a connection is
 * exclusive (swtpm and /dev/tpm0 serve one client at a time), so a session found loaded between
 * our commands belongs to a client that is gone: it cannot be used again by anyone, as its key
 * died with that client. Under a resource manager this finds nothing: the RM keeps other
 * clients' sessions saved, not loaded, while we are served, and flushes them when they close.
 * Sessions of ours (tracked in t->loaded) are never touched.
 */
static unsigned sessions_reclaim(struct tpm_ctx *t) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        unsigned n = 0;

        t->ncmd++;
        if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                               (UINT32) TPM2_HT_LOADED_SESSION << TPM2_HR_SHIFT, TPM2_MAX_CAP_HANDLES,
                               &more, &cap) != TSS2_RC_SUCCESS)
                return 0;
        for (UINT32 i = 0; cap->capability == TPM2_CAP_HANDLES && i < cap->data.handles.count &&
                           i < TPM2_MAX_CAP_HANDLES; i++) {
                TPM2_HANDLE h = cap->data.handles.handle[i];
                ESYS_TR tr = ESYS_TR_NONE;

                if (tracked(t, h))
                        continue;
                /* For a session handle this only creates the ESYS_TR; no command is sent. */
                if (Esys_TR_FromTPMPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS)
                        continue;
                t->ncmd++;
                if (Esys_FlushContext(t->esys, tr) == TSS2_RC_SUCCESS)
                        n++;                    /* ESYS released tr */
                else
                        (void) Esys_TR_Close(t->esys, &tr);
        }
        Esys_Free(cap);
        return n;
}

static int start_session(struct tpm_ctx *t, ESYS_TR salt_key, TPM2_SE type, TPMA_SESSION attrs,
                         ESYS_TR *ret) {
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;

        t->ncmd++;
        rc = Esys_StartAuthSession(t->esys, salt_key, ESYS_TR_NONE,
                                   ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   NULL, type, &session_sym, TPM2_ALG_SHA256, &s);
        if (rc != TSS2_RC_SUCCESS && rc_from_tpm(rc) && rc_base(rc) == TPM2_RC_SESSION_MEMORY &&
            sessions_reclaim(t) > 0) {
                t->ncmd++;
                rc = Esys_StartAuthSession(t->esys, salt_key, ESYS_TR_NONE,
                                           ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           NULL, type, &session_sym, TPM2_ALG_SHA256, &s);
        }
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to start TPM session", rc);
        track(t, s);

        rc = Esys_TRSess_SetAttributes(t->esys, s, attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
        if (rc != TSS2_RC_SUCCESS) {
                flush(t, &s);
                return tpm_fail_rc(t, "Failed to set TPM session attributes", rc);
        }
        *ret = s;
        return 0;
}

static int set_session_attrs(struct tpm_ctx *t, ESYS_TR s, TPMA_SESSION attrs) {
        TSS2_RC rc = Esys_TRSess_SetAttributes(t->esys, s, attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to set TPM session attributes", rc);
        return 0;
}

static int name_from_tpm(struct tpm_ctx *t, const TPM2B_NAME *n, struct tpm_name *ret) {
        if (n->size == 0 || n->size > TPM_NAME_MAX || n->size > sizeof(n->name))
                return tpm_fail(t, -EIO, "TPM returned a name of %u bytes", (unsigned) n->size);
        memcpy(ret->buf, n->name, n->size);
        ret->len = n->size;
        return 0;
}

static bool srk_matches(const TPMT_PUBLIC *p) {
        const TPMS_ECC_PARMS *e = &p->parameters.eccDetail;

        return p->type == TPM2_ALG_ECC &&
               p->nameAlg == TPM2_ALG_SHA256 &&
               p->objectAttributes == SRK_ATTRS &&
               p->authPolicy.size == 0 &&
               e->symmetric.algorithm == TPM2_ALG_AES &&
               e->symmetric.keyBits.aes == 128 &&
               e->symmetric.mode.aes == TPM2_ALG_CFB &&
               e->scheme.scheme == TPM2_ALG_NULL &&
               e->curveID == TPM2_ECC_NIST_P256 &&
               e->kdf.scheme == TPM2_ALG_NULL;
}

/* Reuse the persistent SRK if it has exactly the template, else create the template transiently.
 * A persistent key with other attributes (RSA, no noDA, a policy) is left alone: we would not
 * know what it is for, and its name would not match the one pinned at seal time anyway. */
static int parent_acquire(struct tpm_ctx *t, struct tpm_parent *ret) {
        static const TPM2B_SENSITIVE_CREATE no_sensitive = { 0 };
        static const TPM2B_DATA no_outside = { 0 };
        static const TPML_PCR_SELECTION no_pcrs = { 0 };
        struct tpm_parent p = TPM_PARENT_NULL;
        TPM2B_PUBLIC *pub = NULL;
        TPM2B_NAME *name = NULL;
        TSS2_RC rc;
        int r;

        t->ncmd++;
        rc = Esys_TR_FromTPMPublic(t->esys, TPM_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &p.tr);
        if (rc == TSS2_RC_SUCCESS) {
                t->ncmd++;
                rc = Esys_ReadPublic(t->esys, p.tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     &pub, &name, NULL);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tpm_fail_rc(t, "Failed to read the public area of persistent SRK 0x81000001", rc);
                        goto finish;
                }
                if (srk_matches(&pub->publicArea)) {
                        r = name_from_tpm(t, name, &p.name);
                        if (r < 0)
                                goto finish;
                        *ret = p;
                        p.tr = ESYS_TR_NONE;
                        r = 0;
                        goto finish;
                }
                Esys_Free(pub);
                pub = NULL;
                Esys_Free(name);
                name = NULL;
                tr_close(t, &p.tr);
        } else if (rc_errno(rc) != -ENOENT) {
                return tpm_fail_rc(t, "Failed to look up persistent SRK 0x81000001", rc);
        }

        t->ncmd++;
        rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                &no_sensitive, &srk_template, &no_outside, &no_pcrs,
                                &p.tr, NULL, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to create the storage primary key", rc);
        track(t, p.tr);
        p.transient = true;

        rc = Esys_TR_GetName(t->esys, p.tr, &name);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to get the storage primary key's name", rc);
                goto finish;
        }
        r = name_from_tpm(t, name, &p.name);
        if (r < 0)
                goto finish;
        *ret = p;
        p.tr = ESYS_TR_NONE;
        r = 0;

finish:
        Esys_Free(pub);
        Esys_Free(name);
        if (p.transient)
                flush(t, &p.tr);
        else
                tr_close(t, &p.tr);
        return r;
}

static void parent_release(struct tpm_ctx *t, struct tpm_parent *p) {
        if (p->transient)
                flush(t, &p->tr);
        else
                tr_close(t, &p->tr);
}

static bool name_equal(const struct tpm_name *a, const struct tpm_name *b) {
        return a->len == b->len && a->len <= TPM_NAME_MAX && memcmp(a->buf, b->buf, a->len) == 0;
}

static void pcr_selection(uint32_t mask, TPML_PCR_SELECTION *ret) {
        *ret = (TPML_PCR_SELECTION) {
                .count = 1,
                .pcrSelections[0] = {
                        .hash = TPM2_ALG_SHA256,
                        .sizeofSelect = 3,
                        .pcrSelect = { mask & 0xff, (mask >> 8) & 0xff, (mask >> 16) & 0xff },
                },
        };
}

/* The policy digest of PolicyPCR over the current values of the selected PCRs, followed by
 * PolicyAuthValue if with_auth, computed by the TPM in a trial session (so it is exactly what a
 * real policy session will produce). */
static int policy_pcr_digest(struct tpm_ctx *t, uint32_t mask, bool with_auth, TPM2B_DIGEST *ret) {
        static const TPM2B_DIGEST current = { 0 };     /* empty: the TPM uses the current values */
        TPML_PCR_SELECTION sel;
        TPM2B_DIGEST *digest = NULL;
        ESYS_TR trial = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        pcr_selection(mask, &sel);
        r = start_session(t, ESYS_TR_NONE, TPM2_SE_TRIAL, 0, &trial);
        if (r < 0)
                return r;

        t->ncmd++;
        rc = Esys_PolicyPCR(t->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &current, &sel);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to compute the PCR policy", rc);
                goto finish;
        }
        if (with_auth) {
                t->ncmd++;
                rc = Esys_PolicyAuthValue(t->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tpm_fail_rc(t, "Failed to compute the PCR and auth value policy", rc);
                        goto finish;
                }
        }
        t->ncmd++;
        rc = Esys_PolicyGetDigest(t->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to read the PCR policy digest", rc);
                goto finish;
        }
        if (digest->size != 32) {
                r = tpm_fail(t, -EIO, "TPM returned a policy digest of %u bytes", (unsigned) digest->size);
                goto finish;
        }
        *ret = *digest;
        r = 0;

finish:
        Esys_Free(digest);
        flush(t, &trial);
        return r;
}

int tpm_open(const char *tcti, struct tpm_ctx **ret) {
        struct tpm_ctx *t;
        TSS2_RC rc;
        int r;

        open_err[0] = '\0';
        /* NULL or "" would make tss2 probe its defaults (device, then swtpm on localhost:2321). */
        if (!tcti || !*tcti || !ret) {
                snprintf(open_err, sizeof(open_err), "No TCTI given");
                return -EINVAL;
        }

        t = calloc(1, sizeof(*t));
        if (!t) {
                snprintf(open_err, sizeof(open_err), "Out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < TPM_TRACK_MAX; i++)
                t->loaded[i] = ESYS_TR_NONE;
        t->bound_nv = ESYS_TR_NONE;
        t->bound_session = ESYS_TR_NONE;

        rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                snprintf(open_err, sizeof(open_err), "Cannot connect to the TPM via TCTI '%s': %s",
                         tcti, Tss2_RC_Decode(rc));
                free(t);
                return -ENODEV;
        }

        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                snprintf(open_err, sizeof(open_err), "Failed to initialize ESAPI: %s", Tss2_RC_Decode(rc));
                r = rc_errno(rc);
                goto fail;
        }

        /* A TPM started by firmware (or swtpm with startup-clear) answers TPM2_RC_INITIALIZE. */
        t->ncmd++;
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        if (rc != TSS2_RC_SUCCESS && !(rc_from_tpm(rc) && rc_base(rc) == TPM2_RC_INITIALIZE)) {
                snprintf(open_err, sizeof(open_err), "TPM startup via TCTI '%s' failed: %s",
                         tcti, Tss2_RC_Decode(rc));
                /* A transport failure here means there is no usable TPM at the other end. */
                r = rc_from_tpm(rc) ? rc_errno(rc) : -ENODEV;
                goto fail;
        }

        *ret = t;
        return 0;

fail:
        if (t->esys)
                Esys_Finalize(&t->esys);
        Tss2_TctiLdr_Finalize(&t->tcti);
        free(t);
        return r;
}

void tpm_close(struct tpm_ctx *t) {
        if (!t)
                return;
        /* The bound counter's session is the one handle that is loaded between calls. */
        flush(t, &t->bound_session);
        /* Normally empty now: only handles whose flush failed are still here. */
        for (size_t i = 0; i < TPM_TRACK_MAX; i++)
                flush(t, &t->loaded[i]);
        tr_close(t, &t->bound_nv);
        Esys_Finalize(&t->esys);
        Tss2_TctiLdr_Finalize(&t->tcti);
        explicit_bzero(t, sizeof(*t));
        free(t);
}

const char *tpm_last_error(const struct tpm_ctx *t) {
        return t ? t->err : open_err;
}

uint64_t tpm_command_count(const struct tpm_ctx *t) {
        return t ? t->ncmd : 0;
}

int tpm_parent_name(struct tpm_ctx *t, struct tpm_name *ret) {
        struct tpm_parent p = TPM_PARENT_NULL;
        int r;

        if (!t || !ret)
                return -EINVAL;
        r = parent_acquire(t, &p);
        if (r < 0)
                return r;
        *ret = p.name;
        parent_release(t, &p);
        return 0;
}

/* Seal the KEK under the storage parent.
 *
 * The Create command carries the KEK, so it runs over an HMAC session salted with the parent's
 * public key and with parameter encryption (AES-128-CFB) on the command's first parameter: the
 * salt is encrypted to the parent (ECDH), so only the TPM and we know the session key, and a bus
 * sniffer or an interposer on the TCTI never sees the KEK. The parent's name is returned in the
 * blob so unseal can refuse a different parent before it sends it anything: salting to a key an
 * interposer substituted would hand the interposer the session key. */
int tpm_seal(struct tpm_ctx *t, const uint8_t kek[TPM_KEK_SIZE], uint32_t pcr_mask, struct tpm_sealed *ret) {
        return tpm_seal_auth(t, kek, pcr_mask, NULL, ret);
}

/* The same, and the object's auth value is auth (NULL: empty). It travels in the sensitive part
 * of Create, which the salted session encrypts (TPMA_SESSION_DECRYPT), like the KEK. */
int tpm_seal_auth(struct tpm_ctx *t, const uint8_t kek[TPM_KEK_SIZE], uint32_t pcr_mask,
                  const uint8_t auth[TPM_KEK_AUTH_SIZE], struct tpm_sealed *ret) {
        static const TPM2B_DATA no_outside = { 0 };
        static const TPML_PCR_SELECTION no_pcrs = { 0 };
        struct tpm_parent parent = TPM_PARENT_NULL;
        TPM2B_SENSITIVE_CREATE sens = { 0 };
        TPM2B_PUBLIC tmpl = {
                .publicArea = {
                        .type = TPM2_ALG_KEYEDHASH,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = SEALED_ATTRS | TPMA_OBJECT_USERWITHAUTH,
                        .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
                },
        };
        TPM2B_PRIVATE *out_priv = NULL;
        TPM2B_PUBLIC *out_pub = NULL;
        struct tpm_sealed sealed = { 0 };
        ESYS_TR session = ESYS_TR_NONE;
        size_t off;
        TSS2_RC rc;
        int r;

        if (!t || !kek || !ret)
                return -EINVAL;
        if (pcr_mask & ~TPM_PCR_MASK_VALID)
                return tpm_fail(t, -EINVAL, "PCR mask 0x%08x selects PCRs above 23", pcr_mask);

        r = parent_acquire(t, &parent);
        if (r < 0)
                return r;

        if (pcr_mask != 0) {
                r = policy_pcr_digest(t, pcr_mask, auth != NULL, &tmpl.publicArea.authPolicy);
                if (r < 0)
                        goto finish;
                tmpl.publicArea.objectAttributes = SEALED_ATTRS | TPMA_OBJECT_ADMINWITHPOLICY;
        }

        r = start_session(t, parent.tr, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT, &session);
        if (r < 0)
                goto finish;

        sens.sensitive.data.size = TPM_KEK_SIZE;
        memcpy(sens.sensitive.data.buffer, kek, TPM_KEK_SIZE);
        if (auth) {
                sens.sensitive.userAuth.size = TPM_KEK_AUTH_SIZE;
                memcpy(sens.sensitive.userAuth.buffer, auth, TPM_KEK_AUTH_SIZE);
        }

        t->ncmd++;
        rc = Esys_Create(t->esys, parent.tr, session, ESYS_TR_NONE, ESYS_TR_NONE,
                         &sens, &tmpl, &no_outside, &no_pcrs,
                         &out_priv, &out_pub, NULL, NULL, NULL);
        explicit_bzero(&sens, sizeof(sens));
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to seal the key", rc);
                goto finish;
        }

        off = 0;
        rc = Tss2_MU_TPM2B_PUBLIC_Marshal(out_pub, sealed.pub, sizeof(sealed.pub), &off);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to encode the sealed public area", rc);
                goto finish;
        }
        sealed.pub_len = off;
        off = 0;
        rc = Tss2_MU_TPM2B_PRIVATE_Marshal(out_priv, sealed.priv, sizeof(sealed.priv), &off);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to encode the sealed private area", rc);
                goto finish;
        }
        sealed.priv_len = off;
        sealed.parent = parent.name;
        sealed.pcr_mask = pcr_mask;

        *ret = sealed;
        t->pinned = parent.name;        /* the parent the caller will record: see counter_session() */
        r = 0;

finish:
        explicit_bzero(&sens, sizeof(sens));
        explicit_bzero(&sealed, sizeof(sealed));
        WIPE_FREE(out_priv);
        WIPE_FREE(out_pub);
        flush(t, &session);
        parent_release(t, &parent);
        return r;
}

/* Decode a sealed blob exactly: no trailing bytes, and the shape tpm_seal() produces. */
static int sealed_decode(struct tpm_ctx *t, const struct tpm_sealed *s, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv) {
        const TPMA_OBJECT need = SEALED_ATTRS;
        size_t off;

        if (s->pcr_mask & ~TPM_PCR_MASK_VALID)
                return tpm_fail(t, -EBADMSG, "Sealed key binds PCRs above 23 (mask 0x%08x)", s->pcr_mask);
        if (s->pub_len > sizeof(s->pub) || s->priv_len > sizeof(s->priv) ||
            s->parent.len == 0 || s->parent.len > TPM_NAME_MAX)
                return tpm_fail(t, -EBADMSG, "Sealed key has impossible lengths");

        off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(s->pub, s->pub_len, &off, pub) != TSS2_RC_SUCCESS || off != s->pub_len)
                return tpm_fail(t, -EBADMSG, "Sealed key's public area does not decode");
        off = 0;
        if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(s->priv, s->priv_len, &off, priv) != TSS2_RC_SUCCESS || off != s->priv_len)
                return tpm_fail(t, -EBADMSG, "Sealed key's private area does not decode");

        if (pub->publicArea.type != TPM2_ALG_KEYEDHASH ||
            pub->publicArea.nameAlg != TPM2_ALG_SHA256 ||
            (pub->publicArea.objectAttributes & need) != need ||
            (pub->publicArea.objectAttributes & (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT)))
                return tpm_fail(t, -EBADMSG, "Sealed key is not a fixedTPM sealed data object");
        return 0;
}

/* Unseal the KEK.
 *
 * The parent's current name must equal the one recorded at seal time, checked before any session
 * is salted to it (see tpm_seal()). The Load runs over a session salted with that parent; the
 * same session then encrypts the Unseal response, so the KEK comes back over the TCTI encrypted
 * under a key only we and the TPM hold. With a PCR policy, a separate (unsalted) policy session
 * carries PolicyPCR; it needs no secrecy. */
int tpm_unseal(struct tpm_ctx *t, const struct tpm_sealed *s, uint8_t kek[TPM_KEK_SIZE]) {
        return tpm_unseal_auth(t, s, NULL, kek);
}

/* The same for an object whose auth value is auth (NULL: empty). The auth value never crosses
 * the TCTI: it only keys the HMAC of the authorizing session (the salted session, or with a PCR
 * policy the policy session after PolicyAuthValue). A wrong one: -EACCES. */
int tpm_unseal_auth(struct tpm_ctx *t, const struct tpm_sealed *s, const uint8_t auth[TPM_KEK_AUTH_SIZE],
                    uint8_t kek[TPM_KEK_SIZE]) {
        static const TPM2B_DIGEST current = { 0 };
        TPM2B_AUTH obj_auth = { 0 };
        struct tpm_parent parent = TPM_PARENT_NULL;
        TPM2B_PUBLIC pub = { 0 };
        TPM2B_PRIVATE priv = { 0 };
        TPM2B_SENSITIVE_DATA *out = NULL;
        TPML_PCR_SELECTION sel;
        ESYS_TR session = ESYS_TR_NONE, policy = ESYS_TR_NONE, obj = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (!t || !s || !kek)
                return -EINVAL;
        r = sealed_decode(t, s, &pub, &priv);
        if (r < 0)
                return r;

        r = parent_acquire(t, &parent);
        if (r < 0)
                return r;
        if (!name_equal(&parent.name, &s->parent)) {
                r = tpm_fail(t, -EXDEV, "Wrong TPM: the storage key's name differs from the one the key was sealed under");
                goto finish;
        }

        r = start_session(t, parent.tr, TPM2_SE_HMAC, 0, &session);
        if (r < 0)
                goto finish;

        t->ncmd++;
        rc = Esys_Load(t->esys, parent.tr, session, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &obj);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to load the sealed key", rc);
                goto finish;
        }
        track(t, obj);
        if (auth) {
                obj_auth.size = TPM_KEK_AUTH_SIZE;
                memcpy(obj_auth.buffer, auth, TPM_KEK_AUTH_SIZE);
                rc = Esys_TR_SetAuth(t->esys, obj, &obj_auth);
                explicit_bzero(&obj_auth, sizeof(obj_auth));
                if (rc != TSS2_RC_SUCCESS) {
                        r = tpm_fail_rc(t, "Failed to set the sealed key's auth value", rc);
                        goto finish;
                }
        }

        r = set_session_attrs(t, session, TPMA_SESSION_ENCRYPT);
        if (r < 0)
                goto finish;

        if (s->pcr_mask != 0) {
                pcr_selection(s->pcr_mask, &sel);
                r = start_session(t, ESYS_TR_NONE, TPM2_SE_POLICY, 0, &policy);
                if (r < 0)
                        goto finish;
                t->ncmd++;
                rc = Esys_PolicyPCR(t->esys, policy, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &current, &sel);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tpm_fail_rc(t, "Failed to apply the PCR policy", rc);
                        goto finish;
                }
                if (auth) {
                        t->ncmd++;
                        rc = Esys_PolicyAuthValue(t->esys, policy, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
                        if (rc != TSS2_RC_SUCCESS) {
                                r = tpm_fail_rc(t, "Failed to apply the auth value policy", rc);
                                goto finish;
                        }
                }
                t->ncmd++;
                rc = Esys_Unseal(t->esys, obj, policy, session, ESYS_TR_NONE, &out);
        } else {
                t->ncmd++;
                rc = Esys_Unseal(t->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &out);
        }
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to unseal the key", rc);
                goto finish;
        }
        if (out->size != TPM_KEK_SIZE) {
                r = tpm_fail(t, -EBADMSG, "Unsealed %u bytes, expected %u", (unsigned) out->size, TPM_KEK_SIZE);
                goto finish;
        }
        memcpy(kek, out->buffer, TPM_KEK_SIZE);
        t->pinned = parent.name;        /* equals the blob's: see counter_session() */
        r = 0;

finish:
        WIPE_FREE(out);
        if (obj != ESYS_TR_NONE)
                (void) Esys_TR_SetAuth(t->esys, obj, &obj_auth);       /* zeroed: ESYS's copy too */
        flush(t, &obj);
        flush(t, &policy);
        flush(t, &session);
        parent_release(t, &parent);
        return r;
}

static bool counter_index_valid(uint32_t index) {
        return index >= TPM_COUNTER_FIRST && index <= TPM_COUNTER_LAST;
}

/* ESYS keeps one ESYS_TR per TPM handle, so looking up the bound index again (to read it, to
 * bind it anew, to undefine it) returns t->bound_nv itself. Such a handle must not be closed, and
 * its auth value is put back afterwards. */
static bool is_bound(const struct tpm_ctx *t, ESYS_TR nv) {
        return nv != ESYS_TR_NONE && nv == t->bound_nv;
}

/* Release a counter handle from counter_lookup(), unless it is the bound one. */
static void counter_release(struct tpm_ctx *t, ESYS_TR *nv) {
        if (is_bound(t, *nv)) {
                (void) Esys_TR_SetAuth(t->esys, *nv, &t->bound_auth);
                *nv = ESYS_TR_NONE;
        } else {
                tr_close(t, nv);
        }
}

/* Look up an NV index and check it is one of our counters. The check matters: an index of another
 * type at the same handle (someone with owner auth undefined ours and defined an ordinary index)
 * could be written back to any value, which would defeat anti-rollback. */
static int counter_lookup(struct tpm_ctx *t, uint32_t index, ESYS_TR *ret) {
        ESYS_TR nv = ESYS_TR_NONE;
        TPM2B_NV_PUBLIC *pub = NULL;
        TSS2_RC rc;
        int r;

        if (!counter_index_valid(index))
                return tpm_fail(t, -EINVAL, "NV index 0x%08x is outside the counter range", index);

        t->ncmd++;
        rc = Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (rc != TSS2_RC_SUCCESS) {
                r = rc_errno(rc);
                return r == -ENOENT ? tpm_fail(t, r, "NV index 0x%08x is not defined", index) :
                                      tpm_fail_rc(t, "Failed to look up the NV counter", rc);
        }
        t->ncmd++;
        rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to read the NV counter's public area", rc);
                goto finish;
        }
        if ((pub->nvPublic.attributes & ~TPMA_NV_WRITTEN) != NV_COUNTER_ATTRS ||
            pub->nvPublic.dataSize != TPM_COUNTER_SIZE ||
            pub->nvPublic.nameAlg != TPM2_ALG_SHA256) {
                r = tpm_fail(t, -EMEDIUMTYPE, "NV index 0x%08x is not a vaultd counter (attributes 0x%08x)",
                         index, (unsigned) pub->nvPublic.attributes);
                goto finish;
        }
        *ret = nv;
        nv = ESYS_TR_NONE;
        r = 0;

finish:
        Esys_Free(pub);
        counter_release(t, &nv);
        return r;
}

static void auth_set(TPM2B_AUTH *a, const uint8_t auth[TPM_COUNTER_AUTH_SIZE]) {
        a->size = TPM_COUNTER_AUTH_SIZE;
        memcpy(a->buffer, auth, TPM_COUNTER_AUTH_SIZE);
}

static int counter_set_auth(struct tpm_ctx *t, ESYS_TR nv, const uint8_t auth[TPM_COUNTER_AUTH_SIZE]) {
        TPM2B_AUTH a = { 0 };
        TSS2_RC rc;

        auth_set(&a, auth);
        rc = Esys_TR_SetAuth(t->esys, nv, &a);
        explicit_bzero(&a, sizeof(a));
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to set the NV counter's auth value", rc);
        return 0;
}

/*
 * Start the session that authorizes counter commands: an HMAC session salted with the storage
 * parent, as tpm_seal() and tpm_unseal() use, unbound, AES-128-CFB for parameter encryption.
 * Its HMAC key is the session key (derived from a salt only we and the TPM know: it travels
 * encrypted to the parent) followed by the counter's auth value. So an interposer on the TCTI
 * can neither authorize a command nor forge the HMAC the TPM puts on every successful response,
 * which ESAPI verifies (a missing or wrong one fails the call), even if it knows the auth value.
 * An unsalted session would be keyed by the auth value alone.
 * Once seal or unseal has vouched for the parent's name on t (unseal: it equals the name in the
 * blob), the salt goes to that parent only: salting to a key an interposer substituted would
 * hand it the salt. The parent is needed only to start the session, which outlives it.
 */
static int counter_session(struct tpm_ctx *t, TPMA_SESSION attrs, ESYS_TR *ret) {
        struct tpm_parent parent = TPM_PARENT_NULL;
        int r;

        r = parent_acquire(t, &parent);
        if (r < 0)
                return r;
        if (t->pinned.len > 0 && !name_equal(&parent.name, &t->pinned))
                r = tpm_fail(t, -EXDEV, "Wrong TPM: the storage key's name differs from the one the "
                         "vault key is sealed under");
        else
                r = start_session(t, parent.tr, TPM2_SE_HMAC, attrs, ret);
        parent_release(t, &parent);
        /* A failure here concerns the parent or the session, never the counter: keep it out of
         * the classes that mean "no such counter" or "wrong auth value" (a verdict on the file). */
        if (r == -ENOENT || r == -EACCES)
                r = -EIO;
        return r;
}

/* Read the counter, authorized by its auth value through the HMAC session s. */
static int counter_read_value(struct tpm_ctx *t, ESYS_TR nv, ESYS_TR s, uint64_t *ret) {
        TPM2B_MAX_NV_BUFFER *data = NULL;
        uint64_t v = 0;
        TSS2_RC rc;

        t->ncmd++;
        rc = Esys_NV_Read(t->esys, nv, nv, s, ESYS_TR_NONE, ESYS_TR_NONE, TPM_COUNTER_SIZE, 0, &data);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to read the NV counter", rc);
        if (data->size != TPM_COUNTER_SIZE) {
                unsigned n = data->size;
                Esys_Free(data);
                return tpm_fail(t, -EIO, "NV counter read returned %u bytes", n);
        }
        for (size_t i = 0; i < TPM_COUNTER_SIZE; i++)
                v = (v << 8) | data->buffer[i];
        Esys_Free(data);
        *ret = v;
        return 0;
}

/* Is an NV index defined? One GetCapability: the first defined handle at or above index. */
static int nv_defined(struct tpm_ctx *t, uint32_t index, bool *ret) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;

        t->ncmd++;
        rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_HANDLES, index, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to list NV indices", rc);
        *ret = cap->capability == TPM2_CAP_HANDLES && cap->data.handles.count >= 1 &&
               cap->data.handles.handle[0] == index;
        Esys_Free(cap);
        return 0;
}

/* Define a counter (attributes: see NV_COUNTER_ATTRS) at index and advance it once.
 * DefineSpace carries the auth value, so it runs over a session salted with the storage parent
 * with command parameter encryption, like tpm_seal(); owner auth is the empty value. The same
 * session then authorizes the first increment and read (counter_session()). If anything after
 * the define fails, the index is undefined again so no NV space leaks. The first increment of a
 * new counter starts from the highest value any undefined counter had (TPM2_NT_COUNTER), so the
 * value it returns is above every value an index undefined before had. */
int tpm_counter_define_at(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE],
                          uint64_t *ret_value) {
        ESYS_TR session = ESYS_TR_NONE, nv = ESYS_TR_NONE;
        TPM2B_NV_PUBLIC nvpub = { 0 };
        TPM2B_AUTH a = { 0 };
        uint64_t value;
        TSS2_RC rc;
        int r;

        if (!t || !auth || !ret_value)
                return -EINVAL;
        if (!counter_index_valid(index))
                return tpm_fail(t, -EINVAL, "NV index 0x%08x is outside the counter range", index);

        r = counter_session(t, TPMA_SESSION_DECRYPT, &session);
        if (r < 0)
                return r;

        nvpub.nvPublic = (TPMS_NV_PUBLIC) {
                .nvIndex = index,
                .nameAlg = TPM2_ALG_SHA256,
                .attributes = NV_COUNTER_ATTRS,
                .dataSize = TPM_COUNTER_SIZE,
        };
        auth_set(&a, auth);
        t->ncmd++;
        rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, session, ESYS_TR_NONE, ESYS_TR_NONE,
                                 &a, &nvpub, &nv);
        explicit_bzero(&a, sizeof(a));
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_fail_rc(t, "Failed to define the NV counter", rc);
                goto finish;
        }

        r = counter_set_auth(t, nv, auth);
        /* Increment and NV_Read have no secret parameter: plain HMAC use of the same session. */
        if (r >= 0)
                r = set_session_attrs(t, session, 0);
        if (r >= 0) {
                t->ncmd++;
                rc = Esys_NV_Increment(t->esys, nv, nv, session, ESYS_TR_NONE, ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS)
                        r = tpm_fail_rc(t, "Failed to initialize the NV counter", rc);
        }
        if (r >= 0)
                r = counter_read_value(t, nv, session, &value);
        if (r < 0) {
                /* Undefine it again, owner-authorized: the index's own auth is not needed any more. */
                (void) Esys_TR_SetAuth(t->esys, nv, &(const TPM2B_AUTH) { 0 });
                t->ncmd++;
                if (Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD,
                                          ESYS_TR_NONE, ESYS_TR_NONE) == TSS2_RC_SUCCESS)
                        nv = ESYS_TR_NONE;      /* ESYS released the handle */
                goto finish;
        }

        *ret_value = value;
        r = 0;
finish:
        explicit_bzero(&a, sizeof(a));
        tr_close(t, &nv);
        flush(t, &session);
        return r;
}

/* Define a counter at a random free index of the range (tpm_counter_define_at()). */
int tpm_counter_define(struct tpm_ctx *t, const uint8_t auth[TPM_COUNTER_AUTH_SIZE],
                       uint32_t *ret_index, uint64_t *ret_value) {
        uint32_t index = 0;
        uint64_t value;
        bool defined = true;
        int r;

        if (!t || !auth || !ret_index || !ret_value)
                return -EINVAL;

        for (unsigned i = 0; i < TPM_COUNTER_TRIES && defined; i++) {
                uint16_t rnd;

                if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                        return tpm_fail(t, -EIO, "getrandom() failed");
                index = TPM_COUNTER_FIRST + rnd;
                r = nv_defined(t, index, &defined);
                if (r < 0)
                        return r;
        }
        if (defined)
                return tpm_fail(t, -ENOSPC, "No free NV index found in 0x%08x..0x%08x",
                            TPM_COUNTER_FIRST, TPM_COUNTER_LAST);
        r = tpm_counter_define_at(t, index, auth, &value);
        if (r < 0)
                return r;
        *ret_index = index;
        *ret_value = value;
        return 0;
}

/* What is at index: 1 one of our counters (by shape: attributes, size, name algorithm), 0
 * nothing, -EMEDIUMTYPE an index of another shape. Needs no auth value. */
int tpm_counter_probe(struct tpm_ctx *t, uint32_t index) {
        ESYS_TR nv = ESYS_TR_NONE;
        int r;

        if (!t)
                return -EINVAL;
        r = counter_lookup(t, index, &nv);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        counter_release(t, &nv);
        return 1;
}

/* Read or advance a counter, over a salted HMAC session of its own (counter_session()): the auth
 * value never crosses the TCTI, and the TPM's answer (the value read at start, which decides
 * between "use the file" and "rollback") cannot be forged by an interposer. Nothing in these
 * commands is secret, so there is no parameter encryption. */
static int counter_op(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE],
                      bool increment, uint64_t *ret_value) {
        ESYS_TR nv = ESYS_TR_NONE, session = ESYS_TR_NONE;
        uint64_t value;
        TSS2_RC rc;
        int r;

        if (!t || !auth || !ret_value)
                return -EINVAL;

        r = counter_lookup(t, index, &nv);
        if (r < 0)
                return r;
        r = counter_set_auth(t, nv, auth);
        if (r < 0)
                goto finish;
        r = counter_session(t, 0, &session);
        if (r < 0)
                goto finish;

        if (increment) {
                t->ncmd++;
                rc = Esys_NV_Increment(t->esys, nv, nv, session, ESYS_TR_NONE, ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tpm_fail_rc(t, "Failed to increment the NV counter", rc);
                        goto finish;
                }
        }
        r = counter_read_value(t, nv, session, &value);
        if (r < 0)
                goto finish;
        *ret_value = value;
        r = 0;

finish:
        flush(t, &session);
        counter_release(t, &nv);
        return r;
}

int tpm_counter_read(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE], uint64_t *ret_value) {
        return counter_op(t, index, auth, false, ret_value);
}

int tpm_counter_increment(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE], uint64_t *ret_value) {
        return counter_op(t, index, auth, true, ret_value);
}

/*
 * The hot path of every authentication is tpm_counter_bump(): one TPM2_NV_Increment, and no
 * other command. To authorize it with an HMAC at that price, binding starts a salted HMAC session
 * (counter_session(), continueSession set) and keeps it loaded; every bump reuses it. So:
 *  - the auth value never crosses the TCTI (as a password it would, in clear, on every bump);
 *  - every successful response carries an HMAC under a key the TCTI never sees, which ESAPI
 *    checks, so an interposer cannot answer "success" to an increment it dropped. A password
 *    response has no HMAC: such a forged success would leave the counter behind the vault file,
 *    and putting the previous file back later would pass the start-up check, a rollback.
 * Error responses carry no HMAC, so an interposer can still make a bump fail; vaultd then
 * refuses until restarted, which is the denial of service bus access gives anyway.
 *
 * The session holds one of the TPM's few session slots while the counter is bound. Under a
 * resource manager (/dev/tpmrm0, tabrmd) it is saved between commands and flushed when vaultd's
 * connection closes; without one (swtpm, /dev/tpm0) it stays loaded, and is flushed by the next
 * bind and by tpm_close(); a vaultd that dies without closing leaves it behind until a later one
 * needs the slot (sessions_reclaim()). Binding also looks the index up and checks its shape, once.
 * It does not use the auth value: a wrong one shows at the first bump. On failure the previous
 * binding, if any, stays in place.
 */
int tpm_counter_bind(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE]) {
        ESYS_TR nv = ESYS_TR_NONE, session = ESYS_TR_NONE;
        int r;

        if (!t || !auth)
                return -EINVAL;
        r = counter_lookup(t, index, &nv);
        if (r < 0)
                return r;
        r = counter_set_auth(t, nv, auth);
        if (r >= 0)
                r = counter_session(t, 0, &session);
        if (r < 0) {
                counter_release(t, &nv);
                return r;
        }
        flush(t, &t->bound_session);
        if (!is_bound(t, nv))
                tr_close(t, &t->bound_nv);
        t->bound_nv = nv;
        t->bound_session = session;
        auth_set(&t->bound_auth, auth);
        t->bound_index = index;
        return 0;
}

/* Did the command fail because the TPM no longer has our session? After a TPM reset it answers
 * TPM2_RC_INITIALIZE until the next Startup; a session that is gone (reset, restart, a resource
 * manager that could not load it back) is "not loaded" or, by handle or value, not valid as
 * session 1. */
static bool session_lost(TSS2_RC rc) {
        TSS2_RC b = rc_base(rc);

        if (!rc_from_tpm(rc))
                return false;
        if (b == TPM2_RC_INITIALIZE || b == TPM2_RC_REFERENCE_S0)
                return true;
        return (rc & TPM2_RC_FMT1) && (rc & TPM2_RC_N_MASK) == (TPM2_RC_S | TPM2_RC_1) &&
               (b == TPM2_RC_HANDLE || b == TPM2_RC_VALUE);
}

/* Drop the bound session without trusting it any further: flushed if the TPM may still hold it,
 * else (or if the flush fails) only its ESYS_TR is released. */
static void bound_session_drop(struct tpm_ctx *t, bool gone) {
        ESYS_TR s = t->bound_session;

        if (s == ESYS_TR_NONE)
                return;
        t->bound_session = ESYS_TR_NONE;
        untrack(t, s);
        if (!gone) {
                t->ncmd++;
                if (Esys_FlushContext(t->esys, s) == TSS2_RC_SUCCESS)
                        return;
        }
        (void) Esys_TR_Close(t->esys, &s);
}

/* The rare path of a bump: the TPM lost the session (see session_lost()). Send the Startup a
 * reset TPM waits for (as tpm_open() does; INITIALIZE back means someone else already sent it),
 * then start a new session. Every command is counted. */
static int bound_session_renew(struct tpm_ctx *t, TSS2_RC why) {
        bool reset = rc_base(why) == TPM2_RC_INITIALIZE;
        TSS2_RC rc;

        if (reset) {
                t->ncmd++;
                rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
                if (rc != TSS2_RC_SUCCESS && !(rc_from_tpm(rc) && rc_base(rc) == TPM2_RC_INITIALIZE))
                        return tpm_fail_rc(t, "Failed to start up the TPM after a reset", rc);
        }
        bound_session_drop(t, reset || rc_base(why) == TPM2_RC_REFERENCE_S0);
        return counter_session(t, 0, &t->bound_session);
}

int tpm_counter_bump(struct tpm_ctx *t) {
        TSS2_RC rc;
        int r;

        if (!t || t->bound_nv == ESYS_TR_NONE)
                return -EINVAL;
        if (t->bound_session == ESYS_TR_NONE) {
                /* An earlier bump dropped it, or could not renew it. */
                r = counter_session(t, 0, &t->bound_session);
                if (r < 0)
                        return r;
        }

        t->ncmd++;
        rc = Esys_NV_Increment(t->esys, t->bound_nv, t->bound_nv, t->bound_session, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS && session_lost(rc)) {
                r = bound_session_renew(t, rc);
                if (r < 0)
                        return r;
                t->ncmd++;
                rc = Esys_NV_Increment(t->esys, t->bound_nv, t->bound_nv, t->bound_session,
                                       ESYS_TR_NONE, ESYS_TR_NONE);
        }
        if (rc != TSS2_RC_SUCCESS) {
                /* A response ESAPI refused (a bad or missing HMAC: forged, or a broken transport)
                 * has already moved the session's nonces out of step with the TPM. */
                if (!rc_from_tpm(rc))
                        bound_session_drop(t, false);
                return tpm_fail_rc(t, "Failed to increment the NV counter", rc);
        }
        return 0;
}

int tpm_counter_undefine(struct tpm_ctx *t, uint32_t index) {
        ESYS_TR nv = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (!t)
                return -EINVAL;
        r = counter_lookup(t, index, &nv);
        if (r < 0)
                return r;
        t->ncmd++;
        rc = Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD,
                                   ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
                counter_release(t, &nv);
                return tpm_fail_rc(t, "Failed to undefine the NV counter", rc);
        }
        if (is_bound(t, nv)) {
                /* ESYS released the handle; the binding has nothing left to bump. */
                t->bound_nv = ESYS_TR_NONE;
                explicit_bzero(&t->bound_auth, sizeof(t->bound_auth));
                flush(t, &t->bound_session);
        }
        return 0;
}

/* ---- for tpm-internal.h ---- */

ESYS_CONTEXT *tpm_esys(struct tpm_ctx *t) {
        return t->esys;
}

void tpm_count_command(struct tpm_ctx *t) {
        t->ncmd++;
}
