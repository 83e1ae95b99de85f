print("ps-codegen: not built yet")
