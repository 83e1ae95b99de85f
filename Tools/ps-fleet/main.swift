print("ps-fleet: not built yet")
