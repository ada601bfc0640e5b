# find_package(slm) → the imported target slm::slm (libslm.so and include/slm/slm.h).
get_filename_component(_slm_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET slm::slm)
  add_library(slm::slm SHARED IMPORTED)
  find_library(_slm_lib NAMES slm PATHS "${_slm_prefix}/lib" "${_slm_prefix}/lib64" NO_DEFAULT_PATH)
  set_target_properties(slm::slm PROPERTIES IMPORTED_LOCATION "${_slm_lib}"
                        INTERFACE_INCLUDE_DIRECTORIES "${_slm_prefix}/include")
  unset(_slm_lib CACHE)
endif()
unset(_slm_prefix)
