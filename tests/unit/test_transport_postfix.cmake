# test_transport_postfix needs a running Postfix: tests/integration/smtp_postfix.sh starts one
# and runs this binary, so it is built here but not registered as a test of its own.
