"""Registering discovered/provisioned servers in the systems that own them afterwards: IronCore
(metal.ironcore.dev objects through a Kubernetes-style API) or OpenStack Ironic (openstacksdk).
Both implement :class:`activities.registration.interface.Registrar`."""
