package main

import "github.com/argus-tsdb/argus/distributor"

// distributorClients is the distributor's ClientFactory: the shared pool,
// except that in the all-in-one process with a static ring (one ingester,
// this one) the distributor pushes to its ingester in-process
// (-distributor.local-ingester-pushes). A gossiped ring keeps gRPC: the
// address it lists for this ingester is the lifecycler's to pick.
func (a *app) distributorClients() distributor.ClientFactory {
	if a.ingester == nil || !a.cfg.Distributor.LocalIngesterPushes || a.cfg.ringStore() != ringStoreStatic {
		return a.clients
	}
	return distributor.NewLocalClients(a.clients, a.ingesterAddresses()[0], a.ingester, a.cfg.Server.GRPCMaxMsgSize, a.reg)
}
