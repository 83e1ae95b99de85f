print("ps-server: not built yet")
