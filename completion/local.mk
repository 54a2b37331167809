# Bash completion of devicectl and authserver, where bash-completion looks for it (loaded on
# the first completion of the command); tests/completion.test sources them in bash.
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = completion/devicectl completion/authserver
