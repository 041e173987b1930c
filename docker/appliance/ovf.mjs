// Writes the OVA's OVF 1.0 descriptor (DMTF DSP0243 1.1; CIM RASD/VSSD resource types) on stdout:
// one virtual machine with 2 vCPUs, 4 GiB of memory, an LSI Logic SCSI controller holding the
// system disk and the data disk (streamOptimized VMDKs), and one VMXNET3 NIC on "VM Network".
//   node ovf.mjs --name NAME --version V --disk FILE:CAPACITY_BYTES [--disk …]
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { name: { type: 'string' }, version: { type: 'string' }, disk: { type: 'string', multiple: true } },
});
const name = values.name ?? 'shelfgate';
const disks = (values.disk ?? []).map((spec, i) => {
  const colon = spec.lastIndexOf(':');
  const file = spec.slice(0, colon);
  return { id: `disk${i + 1}`, fileId: `file${i + 1}`, href: basename(file), fileBytes: statSync(file).size, capacityBytes: Number(spec.slice(colon + 1)) };
});
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/** CIM_ResourceAllocationSettingData item (RASD ResourceType: 3 CPU, 4 memory, 6 SCSI, 10 NIC, 17 disk). */
const item = (fields) =>
  `      <Item>\n${Object.entries(fields)
    .map(([key, value]) => `        <rasd:${key}>${escape(String(value))}</rasd:${key}>`)
    .join('\n')}\n      </Item>`;

const items = [
  item({ AllocationUnits: 'hertz * 10^6', Description: 'Number of virtual CPUs', ElementName: '2 virtual CPUs', InstanceID: 1, ResourceType: 3, VirtualQuantity: 2 }),
  item({ AllocationUnits: 'byte * 2^20', Description: 'Memory size', ElementName: '4096 MB of memory', InstanceID: 2, ResourceType: 4, VirtualQuantity: 4096 }),
  item({ Address: 0, Description: 'SCSI controller', ElementName: 'SCSI controller 0', InstanceID: 3, ResourceSubType: 'lsilogic', ResourceType: 6 }),
  ...disks.map((disk, i) =>
    item({ AddressOnParent: i, ElementName: `Hard disk ${i + 1}`, HostResource: `ovf:/disk/${disk.id}`, InstanceID: 10 + i, Parent: 3, ResourceType: 17 }),
  ),
  item({
    AddressOnParent: 7,
    AutomaticAllocation: 'true',
    Connection: 'VM Network',
    Description: 'VMXNET3 ethernet adapter on "VM Network"',
    ElementName: 'Network adapter 1',
    InstanceID: 20,
    ResourceSubType: 'VmxNet3',
    ResourceType: 10,
  }),
];

process.stdout.write(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="shelfgate-${escape(values.version ?? '0')}" xmlns="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vmw="http://www.vmware.com/schema/ovf"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
${disks.map((d) => `    <File ovf:href="${escape(d.href)}" ovf:id="${d.fileId}" ovf:size="${d.fileBytes}"/>`).join('\n')}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
${disks
  .map(
    (d) =>
      `    <Disk ovf:capacity="${d.capacityBytes}" ovf:capacityAllocationUnits="byte" ovf:diskId="${d.id}" ovf:fileRef="${d.fileId}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`,
  )
  .join('\n')}
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>Initiators reach the iSCSI portal (3260) and the admin API (8080) on this network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="${escape(name)}">
    <Info>shelfgate iSCSI gateway appliance</Info>
    <Name>${escape(name)}</Name>
    <ProductSection>
      <Info>Product information</Info>
      <Product>shelfgate</Product>
      <Vendor>shelfgate</Vendor>
      <Version>${escape(values.version ?? '0')}</Version>
    </ProductSection>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>The guest operating system</Info>
      <Description>Debian GNU/Linux 12 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>${escape(name)}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
${items.join('\n')}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`);
