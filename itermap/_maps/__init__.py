"""The maps: the protocol, the map base and every kind of map."""
