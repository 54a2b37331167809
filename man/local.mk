dist_man_MANS = man/devicectl.1 man/authserver.8 man/vaultd.8
