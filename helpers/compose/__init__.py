"""`sandbox compose`: Docker Compose's files and verbs, daemonless.

project.py reads the files (found as Compose finds them, YAML with the
scalars of YAML 1.2 as Compose's Go loader reads them, ${VAR}
interpolation from the environment and .env, several files merged) into
a Project of normalized services; plan.py says each service as the flags
of our own `create`; helpers/commands/compose.py carries the verbs out by
running sandbox itself (create, start, stop, rm, network create, ...), so
a compose project's containers are ordinary containers, labelled as
Compose labels them (com.docker.compose.project, .service, ...)."""
