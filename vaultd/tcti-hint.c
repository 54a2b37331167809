/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "vaultd.h"

/*
 * What to check when the TPM cannot be opened, from the TCTI configuration that was tried
 * (tss2's "NAME[:CONF]"): a device node to look for, a software TPM's socket or port to
 * check, else the TCTI's own documentation. One sentence, no trailing period.
 */
void tcti_open_hint(const char *tcti, char *buf, size_t cap) {
        const char *conf = strchr(tcti, ':');
        size_t name_len = conf ? (size_t) (conf - tcti) : strlen(tcti);
        const char *path;

        conf = conf ? conf + 1 : "";
        if (name_len == 6 && strncmp(tcti, "device", 6) == 0) {
                path = *conf ? conf : "/dev/tpmrm0";
                snprintf(buf, cap, "check that the TPM device exists ('ls -l %s'; no TPM: enable it in the "
                         "firmware, or use a software TPM with --tcti swtpm:path=SOCKET) and that vaultd's "
                         "user may open it (group tss, the udev rule)", path);
        } else if ((name_len == 5 && strncmp(tcti, "swtpm", 5) == 0) ||
                   (name_len == 5 && strncmp(tcti, "mssim", 5) == 0)) {
                path = strstr(conf, "path=");
                if (path)
                        snprintf(buf, cap, "check that swtpm runs and listens on its socket ('ls -l %.*s', "
                                 "'swtpm socket --tpm2 --server type=unixio,path=...')",
                                 (int) strcspn(path + 5, ","), path + 5);
                else
                        snprintf(buf, cap, "check that swtpm runs and listens on %s (host and port of "
                                 "--tcti, default localhost:2321)", *conf ? conf : "localhost:2321");
        } else
                snprintf(buf, cap, "check the TCTI '%.*s' and its configuration (--tcti, VAULTD_TCTI or the "
                         "config key tcti)", (int) name_len, tcti);
}
