/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "fault.h"
#include "log-journal.h"
#include "tpm.h"
#include "vaultd.h"

/* STATUS= for the current vault state. */
static void notify_status(struct vaultd *d) {
        d->status_notified = d->status_gen;
        switch (d->state) {
        case VAULT_READY:
                (void) sd_notifyf(0, "STATUS=vault %s epoch %" PRIu64 " ready",
                                  d->hdr.params.device_id, d->hdr.params.epoch);
                break;
        case VAULT_NONE:
                (void) sd_notify(0, "STATUS=no vault provisioned");
                break;
        case VAULT_REFUSED:
                (void) sd_notifyf(0, "STATUS=%s", d->refusal);
                break;
        }
}

/* After every turn of the loop in which anything happened: tell systemd when the vault state
 * changed (a commit, a provisioning, a refusal: vstate bumps d->status_gen). */
static int on_post(sd_event_source *s, void *userdata) {
        struct vaultd *d = userdata;

        if (d->status_gen != d->status_notified)
                notify_status(d);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) sd_notify(0, "STOPPING=1");
        log_info("Stopping on signal %u", si->ssi_signo);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void group_missing(const char *kind, const char *name) {
        log_warning("%s group '%s' does not exist; ignoring it", kind, name);
}

static int run(struct vaultd *d) {
        sigset_t mask;
        int r;

        r = sd_event_default(&d->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, NULL) < 0 ||
            sd_event_add_signal(d->event, NULL, SIGINT, on_signal, NULL) < 0) {
                log_error("Failed to set up signal handling");
                return -EIO;
        }
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the watchdog: %m");

        r = storage_open_dir(d->cfg->state_dir, &d->state_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to open state directory '%s': %m", d->cfg->state_dir);

        r = tpm_open(d->cfg->tcti, &d->tpm);
        if (r < 0) {
                char hint[512];

                tcti_open_hint(d->cfg->tcti, hint, sizeof hint);
                log_error_errno(r, "Failed to open the TPM (%s): %s", tpm_last_error(NULL), hint);
                (void) sd_notifyf(0, "STATUS=cannot open the TPM ('%s')", d->cfg->tcti);
                return r;
        }

        r = vstate_load(d);
        if (r < 0 && d->failure.cause == VSTATE_CAUSE_KEY_FILE) {
                if (d->cfg->key_file)
                        log_error_errno(r, "Failed to read the key file '%s' the vault key is bound to: %s",
                                        d->cfg->key_file, d->failure.reason);
                else
                        log_error("The vault key is bound to a key file, but key-file = none");
                (void) sd_notify(0, "STATUS=cannot read the key file the vault key is bound to");
                return r;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to verify the vault file: %m%s%s",
                                d->failure.reason[0] ? ": " : "", d->failure.reason);
                (void) sd_notify(0, "STATUS=cannot verify the vault file (TPM or disk failure)");
                return r;
        }
        switch (d->state) {
        case VAULT_READY:
                if (r == 1)
                        log_notice("Recovered from an interrupted commit: TPM counter advanced to %" PRIu64
                                   " to match the vault file", d->hdr.counter);
                log_info("vault %s epoch %" PRIu64 " ready (NV 0x%08" PRIx32 ", counter %" PRIu64 ")",
                         d->hdr.params.device_id, d->hdr.params.epoch, d->hdr.nv_index, d->hdr.counter);
                if (d->hdr.kek_auth == VAULTFILE_KEK_AUTH_NONE && d->cfg->key_file)
                        log_notice("The vault key has no auth value (sealed before key files): anyone with the "
                                   "vault file and TPM access can unseal it; provision again to bind it to '%s'",
                                   d->cfg->key_file);
                break;
        case VAULT_NONE:
                log_info("no vault provisioned");
                break;
        case VAULT_REFUSED:
                log_error("%s", d->refusal);
                break;
        }

        r = peercred_resolve_groups(d, group_missing);
        if (r < 0)
                return log_error_errno(r, "Failed to look up the allowed groups: %m");
        r = ipc_listen(d);
        if (r < 0)
                return r;

        r = sd_event_add_post(d->event, NULL, on_post, d);
        if (r < 0)
                return log_error_errno(r, "Failed to set up status notification: %m");
        notify_status(d);
        (void) sd_notify(0, "READY=1");
        r = sd_event_loop(d->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        return r;
}

int main(int argc, char *argv[]) {
        static const char *const fault_points[] = {
                VAULTD_FAULT_BEFORE_FILE, VAULTD_FAULT_AFTER_FILE, VAULTD_FAULT_AFTER_COUNTER,
                VAULTD_FAULT_PROVISION_AFTER_FILE, VAULTD_FAULT_DIR_FSYNC, VAULTD_FAULT_NV_UNDEFINE, NULL,
        };
        const char *bad = NULL;
        struct vaultd_config cfg;
        struct vaultd d = { .cfg = &cfg, .state_fd = -1, .listen_fd = -1 };
        int r;

        /* Before anything else of OpenSSL. */
        if (tpm_openssl_init() < 0)
                return EXIT_FAILURE;

        /* tss2 logs to stderr by default; keep our log ours unless someone asks for tss2's. */
        if (setenv("TSS2_LOG", "all+none", 0) < 0)
                return EXIT_FAILURE;

        log_open("vaultd", LOG_TARGET_AUTO, LOG_TARGET_KMSG, log_journal_sink);
        /* First, so that a test asking for a fault learns at once (even from --version) whether
         * this vaultd can inject it. */
        r = fault_setup(fault_points, &bad);
        if (r == -EOPNOTSUPP) {
                fprintf(stderr, "vaultd: SV_FAULT is set ('%s'), but this vaultd was built with "
                        "--disable-fault-injection\n", bad);
                return VAULTD_EXIT_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "vaultd: invalid SV_FAULT '%s': vaultd's fault points are " VAULTD_FAULT_BEFORE_FILE ", "
                        VAULTD_FAULT_AFTER_FILE ", " VAULTD_FAULT_AFTER_COUNTER ", " VAULTD_FAULT_PROVISION_AFTER_FILE ", "
                        VAULTD_FAULT_DIR_FSYNC " and " VAULTD_FAULT_NV_UNDEFINE "\n", bad);
                return VAULTD_EXIT_USAGE;
        }
        r = config_load(argc, argv, &cfg);
        if (r > 0)
                return EXIT_SUCCESS;
        if (r < 0)
                return r == -ENOMEM ? EXIT_FAILURE : VAULTD_EXIT_USAGE;
        log_set_max_level(cfg.log_level);

        r = secmem_harden_process();
        if (r < 0) {
                log_error_errno(r, "Failed to make the process non-dumpable: %m");
                goto out;
        }
        secmem_init(true);
        r = secmem_alloc(sizeof *d.sec, (void **) &d.sec);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate %zu bytes of secret memory (%s): %m", sizeof *d.sec,
                                secmem_mechanism());
                goto out;
        }
        log_info("Secrets are kept in %s memory", secmem_mechanism());
        if (fault_armed())
                log_warning("SV_FAULT is set: test-only fault injection is active");

        r = run(&d);

out:
        if (d.event)
                ipc_shutdown(&d);       /* closes every connection, ending any handshake */
        session_end(&d);
        vstate_free(&d);
        tpm_close(d.tpm);
        if (d.state_fd >= 0)
                close(d.state_fd);
        sd_event_unref(d.event);
        config_free(&cfg);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
