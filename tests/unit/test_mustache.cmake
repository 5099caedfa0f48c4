# Mustache: the cmocka unit tests, and one ctest case per specification file (data-driven,
# each failing spec test reported by name). Included by tests/CMakeLists.txt with name, mod
# and TEST_ENV set.
add_test(NAME unit.${mod} COMMAND ${name})
set_tests_properties(unit.${mod} PROPERTIES ENVIRONMENT "${TEST_ENV}" TIMEOUT 600)
foreach(spec comments delimiters interpolation inverted partials sections inheritance)
  add_test(NAME unit.${mod}.spec.${spec}
           COMMAND ${name} ${CMAKE_CURRENT_SOURCE_DIR}/data/mustache-spec/${spec}.json)
  set_tests_properties(unit.${mod}.spec.${spec} PROPERTIES ENVIRONMENT "${TEST_ENV}" TIMEOUT 600)
endforeach()
