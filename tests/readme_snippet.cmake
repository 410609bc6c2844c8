# Fails unless README.md contains tests/consumer_find_package/main.cpp verbatim, so the
# README's usage example is the program the find_package consumer test compiles and runs.
file(READ ${SOURCE_DIR}/README.md readme)
file(READ ${SOURCE_DIR}/tests/consumer_find_package/main.cpp snippet)
string(FIND "${readme}" "${snippet}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md does not contain tests/consumer_find_package/main.cpp verbatim")
endif()
