# The ledger's unit suite runs twice: on SQLite files, and on a throwaway PostgreSQL 15
# (tests/unit/ledger_pg.sh starts one with tests/integration/servers/postgres.bash).
add_test(NAME unit.${mod} COMMAND ${name})
set_tests_properties(unit.${mod} PROPERTIES ENVIRONMENT "${TEST_ENV}" TIMEOUT 600)
add_test(NAME unit.${mod}_pg COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/unit/ledger_pg.sh
         $<TARGET_FILE:${name}>)
set_tests_properties(unit.${mod}_pg PROPERTIES ENVIRONMENT "${TEST_ENV}" TIMEOUT 900)
