"""`relay dev`'s demo: the seeded source and subscription, and the receiver that prints
each verified webhook."""
