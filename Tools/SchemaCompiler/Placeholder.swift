// Placeholder until the schema compiler lands.
